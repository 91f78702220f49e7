"""Shared bits of the benchmarks: machine facts, robust statistics, a running local stack."""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "p10": pct(values, 10), "p90": pct(values, 90),
            "min": min(values), "max": max(values), "n": len(values)}


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def write(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text.rstrip() + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def today() -> str:
    return time.strftime("%Y-%m-%d")


def start_stack(**env: str):
    """A fresh local stack (own ports and data dir) for a benchmark; caller stops it."""
    import tempfile

    from tests.support.local_stack import LocalStack

    data = tempfile.mkdtemp(prefix="bench-stack-")
    return LocalStack(data, env={"LOCAL_ACCESS_LOG": "0", **env}).start(timeout=90)
