"""The content policy's cost on the generate request path: loading the rules (once per container)
and checking one request, over the test corpus (refused and allowed prompts).

    .venv/bin/python -m bench.content_policy
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time


def load_ms(rounds: int = 11) -> list[float]:
    """Fresh interpreters: import the module and load the rules file. The standard modules it uses
    (json, re, dataclasses, unicodedata, pathlib) are imported first: the API has them loaded already
    (pydantic, botocore), so the figure is this module's own cost."""
    code = ("import json, re, dataclasses, unicodedata, pathlib, time; t=time.perf_counter();"
            "from chalicelib import content_policy; content_policy.load(); print((time.perf_counter()-t)*1000)")
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(rounds)]


def check_us(rounds: int = 5) -> tuple[list[float], int]:
    from chalicelib import content_policy
    from tests.unit.test_content_policy import ALLOWED, REFUSED

    fields = [{"prompt": p, "name": "Sarah", "personaBackground": "a teacher from Leeds", "style": "casual"}
              for p in [p for p, _ in REFUSED] + ALLOWED]
    content_policy.load()
    per_round = []
    for _ in range(rounds):
        started = time.perf_counter()
        for f in fields:
            content_policy.check(f)
        per_round.append((time.perf_counter() - started) / len(fields) * 1e6)
    return per_round, len(fields)


def main() -> None:
    loads = load_ms()
    checks, n = check_us()
    print(f"load (import + rules, fresh process): median {statistics.median(loads):.1f} ms "
          f"(min {min(loads):.1f}, max {max(loads):.1f}, {len(loads)} runs)")
    print(f"check one request (4 text fields), {n} requests of the corpus: median {statistics.median(checks):.0f} µs "
          f"per request (min {min(checks):.0f}, max {max(checks):.0f}, {len(checks)} rounds)")


if __name__ == "__main__":
    main()
