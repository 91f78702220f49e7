"""Cold start per function: a fresh Python process that imports app.py and handles one event,
against a fresh process doing `import boto3` alone — the floor every Lambda in this stack pays.

Both run as subprocesses, interleaved round by round so machine noise hits both alike; the figure is
the median ratio of wall times (interpreter start included on both sides). Events go to a local
stack (ministack), so each function makes its real first AWS calls (client creation, credentials,
one or two requests). Two environments:

- **package** — what Lambda runs: `make package`'s zips unpacked read-only (deployment.zip as
  /var/task, the layer as /opt, with their shipped .pyc) plus boto3/s3transfer as the runtime
  provides them, imported by the base CPython with `-S` (no venv, nothing else on sys.path);
- **venv** — the project's development venv (test and tooling packages installed), for reference.

    .venv/bin/python -m bench.cold_start [--rounds 21] [--build build/prod]
"""
from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine, ms, start_stack, summary, today, write
from bench.package_cold_start import BASE_PYTHON, build_package, package_is_stale, remove_tree, unpack

SCRIPT = r'''
import json, os, sys, time
t0 = time.perf_counter()
kind = sys.argv[1]
if kind == "boto3":
    import boto3
elif kind == "stack_floor":
    # The API's prescribed stack with none of our code: Chalice and PynamoDB imported, one botocore
    # session and DynamoDB client (on the same slim data), the same Query. (No Powertools: the API
    # loads its Logger only when it logs a line, and a successful GET logs none.)
    import chalice
    from pynamodb.connection import Connection
    from chalicelib.aws.botocore_data import loader
    connection = Connection(region=os.environ["AWS_REGION"], host=os.environ.get("AWS_ENDPOINT_URL"))
    slim = loader()
    if slim is not None:
        connection.session.register_component("data_loader", slim)
    connection.client.query(TableName=os.environ["TABLE_NAME"], KeyConditionExpression="PK = :pk",
                            ExpressionAttributeValues={":pk": {"S": "USER#bench-user"}}, Limit=21)
else:
    from app import app

    class LambdaContext:  # what Lambda passes; defined here so the harness costs the app no import
        def __init__(self, name):
            self.function_name, self.function_version, self.memory_limit_in_mb = name, "$LATEST", 1024
            self.invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:" + name
            self.aws_request_id, self.log_group_name, self.log_stream_name = "bench", "/aws/lambda/" + name, "bench"
            self.identity = self.client_context = None

        def get_remaining_time_in_millis(self):
            return 60_000
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
# A Lambda cold start ends when the first event is handled: the runtime keeps the process. Ending
# there (both sides alike) leaves out CPython's teardown, which grows with what was loaded.
END_AT_EVENT = "\nimport os, sys\nsys.stdout.flush()\nos._exit(0)\n"

KINDS = ("api", "upload_worker", "generation_worker", "usage_worker")
TARGETS = {"api": 1.3, "upload_worker": 2.0, "generation_worker": 2.0, "usage_worker": 2.0}


def run_once(kind: str, env: dict, command: list[str], teardown: bool = False) -> float:
    script = SCRIPT if teardown else SCRIPT + END_AT_EVENT
    started = time.perf_counter()
    done = subprocess.run([*command, script, kind], cwd=str(ROOT), env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-2000:]}")
    return elapsed


def package_command(build: Path, dest: Path) -> list[str]:
    """`python -S -c` with only the unpacked package (and the runtime's boto3) on sys.path."""
    import boto3
    import s3transfer

    task, site = unpack(build, dest, with_bytecode=True)
    runtime = dest / "runtime"  # Lambda's own boto3 (botocore comes from the layer, which is first)
    for module in (boto3, s3transfer):
        shutil.copytree(Path(module.__file__).parent, runtime / module.__name__,
                        ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(str(runtime), quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    prelude = f"import sys; sys.path[:0] = {[str(task), str(site), str(runtime)]!r}\n"
    return [BASE_PYTHON, "-S", "-c", prelude + "exec(sys.argv.pop(1))"]


def measure(command: list[str], env: dict, rounds: int) -> tuple[dict, dict, dict]:
    for kind in ("boto3", *KINDS):  # warm the page cache (and, in the venv, write .pyc files) once
        run_once(kind, env, command)
    times: dict[str, list[float]] = {k: [] for k in ("boto3", *KINDS)}
    ratios: dict[str, list[float]] = {k: [] for k in KINDS}
    # For the record: the stack's floor, and the API and the reference again, exiting normally.
    extra: dict[str, list[float]] = {"floor": [], "floor_ratio": [], "boto3": [], "api": [], "ratio": []}
    for _ in range(rounds):
        base = run_once("boto3", env, command)
        times["boto3"].append(base)
        for kind in KINDS:
            t = run_once(kind, env, command)
            times[kind].append(t)
            ratios[kind].append(t / base)
        floor = run_once("stack_floor", env, command)
        extra["floor"].append(floor)
        extra["floor_ratio"].append(floor / base)
        base, api = run_once("boto3", env, command, teardown=True), run_once("api", env, command, teardown=True)
        extra["boto3"].append(base)
        extra["api"].append(api)
        extra["ratio"].append(api / base)
    return times, ratios, extra


def notes(extra: dict) -> str:
    def median(key: str) -> float:
        return summary(extra[key])["median"]

    return (f"The API's floor — the same process with none of our code (Chalice "
            f"and PynamoDB imported, one botocore session and DynamoDB client on the same slim data, the same "
            f"Query) — takes {ms(median('floor'))}: **{median('floor_ratio'):.2f}×**.\n"
            f"Exiting normally instead (CPython's teardown included), the API process takes "
            f"{ms(median('api'))} against {ms(median('boto3'))}: **{median('ratio'):.2f}×**.\n")


def table(times: dict, ratios: dict) -> str:
    rows = []
    for kind in KINDS:
        r = summary(ratios[kind])
        t = summary(times[kind])
        ok = "yes" if r["median"] <= TARGETS[kind] else "**no**"
        rows.append(f"| {kind} | {ms(t['median'])} | **{r['median']:.2f}×** ({r['p10']:.2f}–{r['p90']:.2f}) | "
                    f"≤ {TARGETS[kind]}× | {ok} |")
    return ("| function | median wall time | ratio to `import boto3` (p10–p90) | target | met |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--build", default=str(ROOT / "build" / "prod"), help="make package's output")
    args = parser.parse_args(argv)
    from local.stack import app_environment

    build = Path(args.build)
    if package_is_stale(build):
        build_package(build)
    tmp = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    stack = start_stack(LOCAL_SEED="0")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCAL_"))}
        env.update(app_environment(stack.outputs, stack.jwt_secret))
        # In the venv the warm-up round writes .pyc files, as a deployment package ships them (any
        # value of this variable, "0" included, would turn that off and make every round compile anew).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update({"STAGE": "local", "POWERTOOLS_SERVICE_NAME": "avatar-creator",
                    "USAGE_EVENTS_DLQ_URL": stack.outputs["UsageEventsDlqUrl"]})
        package_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}  # read-only, as on Lambda
        package_times, package_ratios, package_extra = measure(package_command(build, tmp), package_env, args.rounds)
        venv_times, venv_ratios, venv_extra = measure([sys.executable, "-c"], env, args.rounds)
    finally:
        stack.stop()
        remove_tree(tmp)

    text = f"""# Cold start per function

Measured {today()} on {machine()}; {args.rounds} interleaved rounds after one warm-up round, per environment.
Rerun: `.venv/bin/python -m bench.cold_start` (or `make bench`).

Each figure is a fresh `python` process that imports `app.py` and handles one event against the
local stack (the API: `GET /projects` with the authorizer's principal; each worker: one SQS record
it skips or rejects after its real DynamoDB read), divided by a fresh process that does
`import boto3` alone in the same round. Wall time from process start (interpreter start included)
until the event is handled, on both sides: the processes then end with `os._exit`, because a Lambda
cold start ends there — the runtime keeps the process, it never pays CPython's teardown (the figure
with teardown follows each table). Route modules import the domain (and, through it, PynamoDB and
the models) inside the route functions, so `import app` stays light and the first event pays for
what it uses: the figures include that, because each process handles its event. Compare ratios
across runs, not milliseconds: this shared machine's speed varies from day to day.

**As deployed** — `make package`'s zips unpacked read-only (deployment.zip as /var/task, the layer
as /opt, with the .pyc files infra.compile_package ships) plus boto3/s3transfer where Lambda's
runtime provides them, run by the base CPython with `-S` and nothing else on `sys.path`
(`import boto3`: {ms(summary(package_times['boto3'])['median'])} median):

{table(package_times, package_ratios)}
{notes(package_extra)}
**In the development venv** — the same processes in `.venv` (moto, Playwright, schemathesis,
cfn-lint… installed beside the app; `import boto3`: {ms(summary(venv_times['boto3'])['median'])} median):

{table(venv_times, venv_ratios)}
{notes(venv_extra)}"""
    write("cold_start", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
