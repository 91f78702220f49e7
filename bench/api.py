"""Request overhead per API route: the route's handler time, in process, against the raw DynamoDB
calls it makes, replayed with a plain boto3 client on the same local-stack endpoint.

The reference is exact: while a route runs once (warm), botocore's `provide-client-params` hook records
every DynamoDB request it makes (operation and parameters); the bench then replays those requests
with boto3. So the ratio is what the service adds on top of the unavoidable round trips: routing,
authorizer context, validation, PynamoDB (de)serialisation, presigning image URLs, JSON. Both sides
are warm (clients built, connections open) and measured interleaved, round by round.

    .venv/bin/python -m bench.api [--rounds 40]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from typing import Any

from bench.common import api_event, machine, ms, start_stack, summary, today, write

USER = "bench-api"
TARGET = 1.5


class Recorder:
    """Every DynamoDB request made by clients created after install(), while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.calls: list[tuple[str, dict]] = []
        self._handler = ("provide-client-params.dynamodb", self._record)

    def _record(self, params: dict, model: Any, **_: Any) -> None:
        if self.on:
            self.calls.append((model.name, copy.deepcopy(params)))
        return None  # a non-None answer would replace the request's parameters

    def install(self) -> None:
        from botocore import handlers

        handlers.BUILTIN_HANDLERS.append(self._handler)


def seed(connection: Any) -> dict:
    from chalicelib.usage import service as usage
    from tests.support.usage import event, new_project, ready_avatar

    project = new_project(connection, USER, "Bench")
    for n in range(11):
        new_project(connection, USER, f"Other {n}")
    avatar_ids = [ready_avatar(connection, USER, project, name=f"Avatar {n}") for n in range(20)]
    for n in range(30):
        body = json.dumps(event(USER, avatar_ids[0], appId=f"app-{n % 4}"))
        usage.record_usage(connection, usage.parse_event(body))
    return {"project": project, "avatar": avatar_ids[0]}


def routes(seeded: dict) -> list[tuple[str, str, str, dict]]:
    pid, aid = seeded["project"], seeded["avatar"]
    return [
        ("GET /projects", "/projects", "/projects", {}),
        ("GET /projects/{id}", "/projects/{project_id}", f"/projects/{pid}", {"project_id": pid}),
        ("GET /projects/{id}/avatars", "/projects/{project_id}/avatars", f"/projects/{pid}/avatars", {"project_id": pid}),
        ("GET /avatars/{id}", "/avatars/{avatar_id}", f"/avatars/{aid}", {"avatar_id": aid}),
        ("GET /avatars/{id}/usage-history", "/avatars/{avatar_id}/usage-history", f"/avatars/{aid}/usage-history",
         {"avatar_id": aid}),
        ("GET /stats", "/stats", "/stats", {}),
        ("GET /projects/{id}/generations", "/projects/{project_id}/generations", f"/projects/{pid}/generations",
         {"project_id": pid}),
        ("GET /presets", "/presets", "/presets", {}),
        ("GET /persona-examples", "/persona-examples", "/persona-examples", {}),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)

    stack = start_stack()
    try:
        from local.stack import configure_environment

        configure_environment(stack.outputs, stack.jwt_secret)
        os.environ["LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
        recorder = Recorder()
        recorder.install()  # before the app builds any client

        import boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError
        from botocore import xform_name

        from app import app
        from chalicelib import dependencies
        from local.feeder import LambdaContext
        from bench.load import wait_for_gallery

        dependencies.reset()
        seeded = seed(dependencies.get_deps().dynamodb)
        wait_for_gallery(stack, f"Bearer {stack.token(USER)}")
        context = LambdaContext("api_handler")
        raw = boto3.client("dynamodb", endpoint_url=stack.outputs["AwsEndpoint"], region_name=stack.outputs["Region"],
                           config=Config(retries={"mode": "standard", "max_attempts": 3}))

        def handle(resource: str, path: str, params: dict) -> float:
            event = api_event("GET", resource, path, params, USER)
            t0 = time.perf_counter()
            out = app(event, context)
            elapsed = time.perf_counter() - t0
            assert out["statusCode"] == 200, (path, out)
            return elapsed

        def replay(calls: list[tuple[str, dict]]) -> float:
            t0 = time.perf_counter()
            for op, params in calls:
                try:
                    getattr(raw, xform_name(op))(**params)
                except ClientError:  # a conditional check the route also met: the round trip is what counts
                    pass
            return time.perf_counter() - t0

        table = routes(seeded)
        recorded: dict[str, list[tuple[str, dict]]] = {}
        for name, resource, path, params in table:  # warm both sides; record the route's requests
            handle(resource, path, params)
            recorder.calls = []
            recorder.on = True
            handle(resource, path, params)
            recorder.on = False
            recorded[name] = recorder.calls
            replay(recorded[name])

        times: dict[str, dict[str, list[float]]] = {n: {"handler": [], "raw": [], "ratio": []} for n, *_ in table}
        for _ in range(args.rounds):
            for name, resource, path, params in table:
                h = handle(resource, path, params)
                r = replay(recorded[name])
                times[name]["handler"].append(h)
                times[name]["raw"].append(r)
                times[name]["ratio"].append(h / r if r else float("nan"))
    finally:
        stack.stop()

    rows, worst = [], 0.0
    for name, *_ in table:
        t = times[name]
        ratio = summary(t["ratio"])
        worst = max(worst, ratio["median"])
        calls = ", ".join(op for op, _ in recorded[name]) or "—"
        ok = "yes" if ratio["median"] <= TARGET else "**no**"
        rows.append(f"| {name} | {calls} | {ms(statistics.median(t['handler']))} | {ms(statistics.median(t['raw']))} | "
                    f"**{ratio['median']:.2f}×** ({ratio['p10']:.2f}–{ratio['p90']:.2f}) | {ok} |")
    text = f"""# Request overhead per route

Measured {today()} on {machine()}; {args.rounds} interleaved rounds after a warm-up, medians.
Rerun: `.venv/bin/python -m bench.api --rounds {args.rounds}` (or `make bench`).

Each route's handler runs in process (the Chalice app called with an API Gateway proxy event carrying
the authorizer's principal, as Lambda calls it) against the local stack's DynamoDB and S3 endpoint.
The reference is the same DynamoDB requests — recorded from the route through botocore's
`provide-client-params` hook, so the same operations with the same parameters — replayed with a
plain boto3 client on the same endpoint, right after the handler, in every round. The ratio is the
handler's time over the raw calls' time: what the service adds per request (routing, validation,
PynamoDB, presigned image URLs, JSON). Target for reads: ≤ {TARGET}×. Data: 12 projects, 20 ready
avatars in one project, 30 usage events, the preset gallery; lists return their first page (20).

| route | DynamoDB requests | handler | raw boto3 calls | ratio (p10–p90) | ≤ {TARGET}× |
|---|---|---|---|---|---|
""" + "\n".join(rows) + f"\n\nHighest median ratio: **{worst:.2f}×**.\n"
    write("api", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
