"""Cold start per function: a fresh Python process that imports app.py and handles one event,
against a fresh process doing `import boto3` alone — the floor every Lambda in this stack pays.

Both run as subprocesses, interleaved round by round so machine noise hits both alike; the figure is
the median ratio of wall times (interpreter start included on both sides). Events go to a local
stack (ministack), so each function makes its real first AWS calls (client creation, credentials,
one or two requests).

    .venv/bin/python -m bench.cold_start [--rounds 9]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.common import ROOT, machine, ms, start_stack, summary, today, write

API = "/api/apps/avatar-creator"

SCRIPT = r'''
import json, os, sys, time
t0 = time.perf_counter()
kind = sys.argv[1]
if kind == "boto3":
    import boto3
else:
    from app import app
    from local.feeder import LambdaContext
    if kind == "api":
        path = "/api/apps/avatar-creator/projects"
        event = {"resource": path, "path": path, "httpMethod": "GET", "headers": {"Host": "bench"},
                 "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
                 "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
                 "requestContext": {"resourcePath": path, "httpMethod": "GET", "requestId": "bench",
                                    "stage": "api", "authorizer": {"principalId": "bench-user"}}}
        out = app(event, LambdaContext("api_handler"))
        assert out["statusCode"] == 200, out
    else:
        bodies = {
            "upload_worker": json.dumps({"Records": [{"eventName": "ObjectCreated:Post", "s3": {
                "bucket": {"name": os.environ["UPLOAD_BUCKET"]}, "object": {"key": "uploads/bench-user/ava_01kbench000000000000000000", "size": 10}}}]}),
            "generation_worker": json.dumps({"userId": "bench-user", "generationId": "gen_01kbench000000000000000000"}),
            "usage_worker": json.dumps({"eventId": "e1", "userId": "bench-user", "avatarId": "ava_01kbench000000000000000000",
                                        "appId": "pose-generator", "appName": "Pose", "action": "use",
                                        "occurredAt": "2026-01-01T00:00:00Z"}),
        }
        record = {"messageId": "m1", "receiptHandle": "r1", "body": bodies[kind], "attributes": {"ApproximateReceiveCount": "1"},
                  "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                  "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"}
        out = app.handler_map[kind]({"Records": [record]}, LambdaContext(kind))
        assert not (out or {}).get("batchItemFailures"), out
print(json.dumps({"inside": time.perf_counter() - t0}))
'''

KINDS = ("api", "upload_worker", "generation_worker", "usage_worker")
TARGETS = {"api": 1.3, "upload_worker": 2.0, "generation_worker": 2.0, "usage_worker": 2.0}


def run_once(kind: str, env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SCRIPT, kind], cwd=str(ROOT), env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    from local.stack import app_environment

    stack = start_stack(LOCAL_SEED="0")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCAL_"))}
        env.update(app_environment(stack.outputs, stack.jwt_secret))
        # The warm-up round writes .pyc files, as a deployment package ships them (any value of this
        # variable, "0" included, would turn that off and make every round compile chalicelib anew).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update({"STAGE": "local", "POWERTOOLS_SERVICE_NAME": "avatar-creator",
                    "USAGE_EVENTS_DLQ_URL": stack.outputs["UsageEventsDlqUrl"]})
        for kind in ("boto3", *KINDS):  # warm the page cache and .pyc files once
            run_once(kind, env)
        times: dict[str, list[float]] = {k: [] for k in ("boto3", *KINDS)}
        ratios: dict[str, list[float]] = {k: [] for k in KINDS}
        for _ in range(args.rounds):
            base = run_once("boto3", env)
            times["boto3"].append(base)
            for kind in KINDS:
                t = run_once(kind, env)
                times[kind].append(t)
                ratios[kind].append(t / base)
    finally:
        stack.stop()

    rows = []
    for kind in KINDS:
        r = summary(ratios[kind])
        t = summary(times[kind])
        ok = "yes" if r["median"] <= TARGETS[kind] else "**no**"
        rows.append(f"| {kind} | {ms(t['median'])} | **{r['median']:.2f}×** ({r['p10']:.2f}–{r['p90']:.2f}) | "
                    f"≤ {TARGETS[kind]}× | {ok} |")
    base = summary(times["boto3"])
    text = f"""# Cold start per function

Measured {today()} on {machine()}; {args.rounds} interleaved rounds after one warm-up round.
Rerun: `.venv/bin/python -m bench.cold_start` (or `make bench`).

Each figure is a fresh `python` process that imports `app.py` and handles one event against the
local stack (the API: `GET /projects` with the authorizer's principal; each worker: one SQS record
it skips or rejects after its real DynamoDB read), divided by a fresh process that does
`import boto3` alone ({ms(base['median'])} median) in the same round. Wall time of the whole
process, interpreter start included on both sides. The project venv (dev packages installed) is used;
Lambda's layer holds only requirements.txt.

| function | median wall time | ratio to `import boto3` (p10–p90) | target | met |
|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    write("cold_start", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
