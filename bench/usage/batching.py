"""Per-batch aggregation of usage counters (issue 32, item 1): before and after, in the same run.

    .venv/bin/python -m bench.usage.batching [--rounds 3]     (~2 min; part of `make bench`)

For a batch of 10 events spread over 1, 3 and 10 avatars of one user (3 apps), over moto, with the
capacity recorder (bench/capacity_profile.Recorder) on every request:
- **before**: each event recorded alone, one transaction per event — what the usage worker did until
  issue 32 (`usage.record_usage`, whose single-event transaction is the old one item for item);
- **after**: the usage worker's handler on the whole batch (`handlers.usage.handle`: one transaction
  per avatar, counters written once).
Reported per event: write units (DynamoDB's size rules, transactional ×2, GSI writes, as the
capacity model counts them) and transactions; per worker: events/s = 10 ÷ the batch's modelled
duration on AWS (the handler's own measured time + 20 ms per transaction, bench/capacity.LATENCY),
and, for reference, the events/s measured over moto in-process. Writes bench/results/usage_batching.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "usage_batching.md"
APPS = ("app-0", "app-1", "app-2")


class _Event:
    """What the handler reads of Chalice's SQSEvent."""

    def __init__(self, bodies: list[str]) -> None:
        self._raw = {"Records": [{"messageId": uuid.uuid4().hex, "body": b} for b in bodies]}

    def to_dict(self) -> dict:
        return self._raw


def _batch(user: str, avatars: list[str]) -> list[str]:
    import json

    from tests.support.usage import event

    return [json.dumps(event(user, avatars[n % len(avatars)], appId=APPS[n % 3], appName=APPS[n % 3]))
            for n in range(10)]


def _measure(recorder: Any, run: Any) -> dict:
    from bench.capacity import LATENCY
    from bench.capacity_profile import Session

    op = Session._new_op("usage_worker", 10)
    recorder.op = op
    started = time.perf_counter()
    try:
        run()
    finally:
        recorder.op = None
    wall = time.perf_counter() - started
    own = max(0.0, wall - op["aws_seconds"] - op.get("lookup_seconds", 0.0))
    tx = op["requests"].get("dynamodb.TransactWriteItems", 0)
    other = sum(n for name, n in op["requests"].items() if name != "dynamodb.TransactWriteItems")
    modelled = own + tx * LATENCY["dynamodb.TransactWriteItems"] + other * LATENCY["dynamodb"]
    wcu = sum(t["units"] for t in op["touches"] if t["kind"] == "write")
    return {"wcu": wcu / 10, "tx": tx / 10, "own": own, "modelled": modelled, "moto_wall": wall - op.get("lookup_seconds", 0.0)}


def run(rounds: int) -> list[dict]:
    from chalicelib import dependencies
    from chalicelib.usage import service as usage
    from chalicelib.handlers import usage as handler
    from tests.support.usage import new_project, ready_avatar

    deps = dependencies.get_deps()
    rows = []
    for spread in (1, 3, 10):
        for mode in ("before", "after"):
            samples = []
            for _ in range(rounds):
                user = f"bench-{uuid.uuid4().hex[:8]}"
                project = new_project(deps.dynamodb, user)
                avatars = [ready_avatar(deps.dynamodb, user, project) for _ in range(spread)]
                bodies = _batch(user, avatars)
                if mode == "before":
                    def go(bodies: list[str] = bodies) -> None:
                        for b in bodies:
                            usage.record_usage(deps.dynamodb, usage.parse_event(b))
                else:
                    def go(bodies: list[str] = bodies) -> None:
                        assert handler.handle(_Event(bodies)) == {"batchItemFailures": []}
                samples.append(_measure(RECORDER, go))
            rows.append({"avatars": spread, "mode": mode,
                         "wcu": statistics.median(s["wcu"] for s in samples),
                         "tx": statistics.median(s["tx"] for s in samples),
                         "modelled": statistics.median(s["modelled"] for s in samples),
                         "moto": statistics.median(s["moto_wall"] for s in samples)})
    return rows


RECORDER: Any = None


def main(argv: list[str] | None = None) -> int:
    global RECORDER
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", default=str(RESULTS))
    args = parser.parse_args(argv)

    from moto import mock_aws

    from bench.capacity_profile import USER, Namer, Recorder
    from bench.common import machine, today
    from chalicelib import dependencies

    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1", "STAGE": "test"}
    os.environ.update(env)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        from local.provision import provision

        outputs = provision(endpoint_url=None, region="us-east-1")
        os.environ["TABLE_NAME"] = outputs["TableName"]
        os.environ["USAGE_EVENTS_QUEUE_URL"] = outputs["UsageEventsQueueUrl"]
        RECORDER = Recorder(outputs["TableName"], Namer(USER, {}, {}))
        RECORDER.install()
        dependencies.reset()
        try:
            rows = run(args.rounds)
        finally:
            RECORDER.uninstall()

    by = {(r["avatars"], r["mode"]): r for r in rows}
    lines = ["# Usage counters aggregated per batch (issue 32)\n",
             f"`.venv/bin/python -m bench.usage.batching --rounds {args.rounds}`, {today()} ({machine()}); "
             "over moto, a batch of 10 events of one user over 3 apps, median of the rounds. *Before*: one "
             "transaction per event (the worker until issue 32); *after*: the worker's handler on the batch. "
             "Events/s per worker = 10 ÷ (the handler's own measured time + 20 ms per transaction + 6 ms per "
             "other DynamoDB request, the capacity model's in-region latencies); moto's own speed is shown "
             "for reference only.\n",
             "| avatars in the batch | write units/event before → after | transactions/event | "
             "events/s per worker (AWS, modelled) before → after | × | events/s over moto before → after |",
             "|---|---|---|---|---|---|"]
    for spread in (1, 3, 10):
        b, a = by[(spread, "before")], by[(spread, "after")]
        eb, ea = 10 / b["modelled"], 10 / a["modelled"]
        lines.append(f"| {spread} | {b['wcu']:.1f} → {a['wcu']:.1f} | {b['tx']:.1f} → {a['tx']:.1f} | "
                     f"{eb:.0f} → {ea:.0f} | {ea / eb:.1f}× | {10 / b['moto']:.0f} → {10 / a['moto']:.0f} |")
    text = "\n".join(lines) + "\n"
    Path(args.write).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
