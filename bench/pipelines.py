"""Pipelines on the local stack: upload → ready latency, and generation jobs.

- upload: the browser's POST to S3 finished → the avatar reads `ready` (S3 notification → SQS →
  feeder → validation, re-encode, thumbnail → DynamoDB), for N photos of 2400×1600 (≈ 12 MP JPEG).
- generation: N jobs submitted at once with the offline provider; jobs/s at the configured
  concurrency (2 workers) until all are completed, and the worker's own overhead per job = job time
  minus the provider's render time (measured separately in process).

    .venv/bin/python -m bench.pipelines [--uploads 10] [--jobs 20]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import requests

from bench.common import machine, ms, pct, start_stack, today, write
from tests.support import images as img
from tests.support.uploads import browser_post, poll


def upload_latency(stack, n: int) -> list[float]:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.token('bench-upload')}"
    pid = http.post(stack.api("/projects"), json={"name": "Bench"}, timeout=10).json()["id"]
    data = img.jpeg(2400, 1600)
    out = []
    for _ in range(n):
        created = http.post(stack.api(f"/projects/{pid}/avatars/upload"), timeout=10,
                            json={"name": "B", "contentType": "image/jpeg", "size": len(data)}).json()
        assert browser_post(created["upload"]["url"], created["upload"]["fields"], data).status_code in (200, 201, 204)
        t0 = time.perf_counter()
        avatar = poll(lambda: http.get(stack.api(f"/avatars/{created['avatar']['id']}"), timeout=10).json(),
                      lambda a: a["status"] in ("ready", "rejected"), timeout=30, interval=0.01)
        assert avatar["status"] == "ready", avatar
        out.append(time.perf_counter() - t0)
    return out


def provider_render_time(width: int, height: int, n: int = 5) -> float:
    from chalicelib.generation.providers import GenerationRequest, OfflineProvider

    provider = OfflineProvider()
    times = []
    for seed in range(n):
        t0 = time.perf_counter()
        provider.generate(GenerationRequest("p", "n", width, height, seed))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def generation_throughput(stack, n: int) -> tuple[float, list[float]]:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.token('bench-gen')}"
    pid = http.post(stack.api("/projects"), json={"name": "Gen"}, timeout=10).json()["id"]
    body = {"prompt": "studio portrait", "name": "G", "width": 512, "height": 640}
    t0 = time.perf_counter()
    ids = [http.post(stack.api(f"/projects/{pid}/avatars/generate"), json=body, timeout=10).json()["id"] for _ in range(n)]
    per_job = []
    for gid in ids:
        gen = poll(lambda: http.get(stack.api(f"/generations/{gid}"), timeout=10).json(),
                   lambda g: g["status"] in ("completed", "failed"), timeout=120, interval=0.05)
        assert gen["status"] == "completed", gen
        from datetime import datetime

        started = datetime.fromisoformat(gen["startedAt"].replace("Z", "+00:00"))
        done = datetime.fromisoformat(gen["completedAt"].replace("Z", "+00:00"))
        per_job.append((done - started).total_seconds())
    elapsed = time.perf_counter() - t0
    return n / elapsed, per_job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args(argv)
    # The burst is the point here: no per-user active-job cap in the way.
    stack = start_stack(LOCAL_SEED="0", GENERATION_ACTIVE_LIMIT=str(args.jobs), GENERATION_DAILY_LIMIT="1000")
    try:
        uploads = upload_latency(stack, args.uploads)
        rate, per_job = generation_throughput(stack, args.jobs)
    finally:
        stack.stop()
    render = provider_render_time(512, 640)
    overhead = [max(0.0, t - render) for t in per_job]
    text = f"""# Pipelines on the local stack

Measured {today()} on {machine()}.
Rerun: `.venv/bin/python -m bench.pipelines --uploads {args.uploads} --jobs {args.jobs}`.

| pipeline | figure | p50 | p90 | max |
|---|---|---|---|---|
| upload → ready ({args.uploads} × 2400×1600 JPEG, {len(img.jpeg(2400, 1600)) // 1024} KB) | S3 POST done → `ready` read by the client | {ms(pct(uploads, 50))} | {ms(pct(uploads, 90))} | {ms(max(uploads))} |
| generation job ({args.jobs} submitted at once, offline provider, 2 workers) | claim → completed (startedAt → completedAt) | {ms(pct(per_job, 50))} | {ms(pct(per_job, 90))} | {ms(max(per_job))} |
| generation worker overhead | job time − provider render ({ms(render)}) | {ms(pct(overhead, 50))} | {ms(pct(overhead, 90))} | {ms(max(overhead))} |

**Generation throughput: {rate:.2f} jobs/s** at the configured concurrency of 2 (end to end: API
submit, queue, claim, render, Pillow re-encode and thumbnail, two S3 puts, one DynamoDB transaction).
With FLUX the provider's own time (seconds per image) dominates; the worker adds the overhead above.
Upload latency includes the feeder's long poll (up to 1 s wait per empty receive, as Lambda's event
source mapping polls) — the service's own work per upload is the rest.
"""
    write("pipelines", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
