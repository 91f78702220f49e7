"""DynamoDB calls per read route, at 10 and at 5,000 items: runs the call-count tests (botocore
event hooks count every request) and writes the table they prove.

    .venv/bin/python -m bench.calls
"""
from __future__ import annotations

import subprocess
import sys
import time

from bench.common import ROOT, machine, today, write

TESTS = ["tests/functional/test_call_counts.py", "tests/functional/test_call_counts_scale.py",
         "tests/functional/test_presets.py::test_gallery_reads_are_one_dynamodb_call"]


def main() -> int:
    from chalicelib.presets.service import GALLERY_TTL_SECONDS
    from tests.functional.test_call_counts import EXPECTED, FILTERED
    from tests.functional.test_call_counts_scale import BOUNDED
    from tests.functional.test_call_counts_scale import EXPECTED as MORE

    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=str(ROOT),
                          capture_output=True, text=True)
    status = "pass" if done.returncode == 0 else f"**FAIL** (exit {done.returncode})"
    rows = [f"| {route} | {', '.join(calls)} | {len(calls)} | {len(calls)} |" for route, calls in EXPECTED.items()]
    rows += [f"| {route} | {', '.join(calls)} | {len(calls)} | {len(calls)} |" for route, calls in MORE.items()]
    rows += [f"| {route} | GetItem + up to 3 × Query (then a cursor) | ≤ {most} | ≤ {most} |"
             for route, most in {FILTERED: 4, **BOUNDED}.items()]
    rows += [f"| {r} | Query once per container per {GALLERY_TTL_SECONDS} s, else none | ≤ 1 | ≤ 1 |"
             for r in ("GET /presets", "GET /presets/{id}", "GET /persona-examples")]
    text = f"""# DynamoDB calls per read route

Measured {today()} on {machine()} — {status} in {time.monotonic() - t0:.0f} s.
Rerun: `.venv/bin/python -m pytest {' '.join(TESTS)}` (or `.venv/bin/python -m bench.calls`).

Counted at botocore (`before-call.dynamodb` hooks on every client the app uses), over moto, with one
user holding 10 and then 5,000 projects, avatars in one project, generations in that project and usage
events on one avatar. The tests assert the exact list of calls for both sizes (filters that can leave a
page empty: at most 3 Queries, then a cursor); no route uses Scan. A further test fails if a GET route
of the app has no call count.

| route | calls | at 10 items | at 5,000 items |
|---|---|---|---|
""" + "\n".join(rows) + "\n"
    write("calls", text)
    print(text)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
