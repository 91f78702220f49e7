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


API_PREFIX = "/api/apps/avatar-creator"


def api_event(method: str, resource: str, path: str, path_params: dict | None, user: str,
              query: dict | None = None, body: str | None = None) -> dict:
    """An API Gateway proxy event as Lambda hands it to the API function, the authorizer's principal included."""
    resource, path = API_PREFIX + resource, API_PREFIX + path
    return {"resource": resource, "path": path, "httpMethod": method,
            "headers": {"Host": "bench", "Content-Type": "application/json"},
            "multiValueHeaders": {}, "queryStringParameters": query or None,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
            "pathParameters": path_params or None, "stageVariables": None, "body": body, "isBase64Encoded": False,
            "requestContext": {"resourcePath": resource, "httpMethod": method, "requestId": "bench", "stage": "api",
                               "authorizer": {"principalId": user}}}
