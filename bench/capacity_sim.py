"""The capacity model against the local stack: hundreds of users with the model's mix, then the
DynamoDB requests per key compared with what the recorded profile predicts for the same operations.

    .venv/bin/python -m bench.capacity_sim [--users 200] [--clients 8] [--seconds 45]

The stack is `make run`'s, composed in this process so every request can be seen: ministack over
HTTP, infra/resources.json provisioned, the Chalice app behind local.server's threaded HTTP server,
the SQS handlers fed by local.feeder (as Lambda's event sources), the offline image provider. The
bench/capacity_profile.py recorder counts every DynamoDB request the app makes, by key template.

Clients pick operations with the probabilities of bench/capacity.py's `daily_counts` (per active
user per day), each for a random user among `--users` (each with its own token). After the window
the queues drain; then, for every key template, requests measured vs predicted = Σ over operations
run (API calls answered, uploads processed, jobs run, events recorded) × that operation's requests on
the key in the profile. The gallery partition is reported apart: it is read once per process per TTL.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import requests

from bench.common import RESULTS, machine, today, write

SECRET = "capacity-sim-secret-0123456789abcdef"
TOLERANCE = 0.20
MIN_PREDICTED = 20  # keys predicted fewer requests than this are shown, not judged


def mix() -> dict[str, float]:
    """Client actions and their weights (per active user per day), from the model's traffic."""
    from bench.capacity import Traffic, daily_counts

    t = Traffic()
    counts = daily_counts(t)
    weights = {op: n for op, (n, driver) in counts.items() if op.startswith(("GET ", "POST /avatars"))}
    weights["upload"] = t.uploads
    weights["POST /projects/{id}/avatars/generate"] = counts["POST /projects/{id}/avatars/generate"][0]
    weights["POST /presets/{id}/generate"] = counts["POST /presets/{id}/generate"][0]
    weights["usage batch"] = counts["app SendMessageBatch (10 events)"][0] / 10
    return weights


_sessions = threading.local()


class User:
    """A simulated user: its token, project, avatars and generations. Requests go through the
    calling thread's keep-alive session (requests.Session is not shared between threads)."""

    def __init__(self, name: str, token: str) -> None:
        self.name, self.token = name, token
        self.headers = {"Authorization": f"Bearer {token}"}
        self.project = ""
        self.avatars: list[str] = []
        self.generations: list[str] = []
        self.lock = threading.Lock()

    @property
    def http(self) -> "UserHTTP":
        return UserHTTP(self.headers)


class UserHTTP:
    def __init__(self, headers: dict) -> None:
        session = getattr(_sessions, "session", None)
        if session is None:
            session = _sessions.session = requests.Session()
        self.session, self.headers = session, headers

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.session.get(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.session.post(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)


def start_stack(data_dir: str) -> dict:
    from local import aws
    from local.provision import Provisioner
    from local.stack import configure_environment
    from tests.support.local_stack import free_port, start_ministack

    ministack = start_ministack(data_dir)
    provisioner = Provisioner(ministack.endpoint_url, aws.REGION)
    outputs = provisioner.run()
    port = free_port()
    outputs.update({"ApiUrl": f"http://127.0.0.1:{port}", "AwsEndpoint": ministack.endpoint_url,
                    "Region": aws.REGION})
    configure_environment(outputs, SECRET)
    os.environ.update({"GENERATION_PROVIDER": "offline", "GENERATION_BACKOFF_SECONDS": "0", "LOG_LEVEL": "WARNING"})
    return {"ministack": ministack, "provisioner": provisioner, "outputs": outputs, "port": port}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--dump", action="store_true", help="also write every recorded request (debugging)")
    args = parser.parse_args(argv)

    from bench.capacity_profile import PROFILE_PATH, Namer, Recorder, key_requests, record_profile

    profile = json.loads(PROFILE_PATH.read_text()) if PROFILE_PATH.exists() else record_profile()
    if not all("request" in t for op in profile["ops"].values() for t in op["touches"]):
        profile = record_profile()
    data_dir = tempfile.mkdtemp(prefix="capacity-sim-")
    stack = start_stack(data_dir)
    outputs = stack["outputs"]
    server = feeder = None
    stream_errors = 0
    try:
        from chalicelib import dependencies
        from chalicelib.presets import service as presets
        from chalicelib.auth import issue_token
        from infra.seed import load_documents
        from local.feeder import Feeder
        from local.server import LocalServer, Site
        from tests.support import images as img
        from tests.support.uploads import browser_post, poll

        presets_doc, personas_doc = load_documents()
        # Placeholders for every simulated user (sim0000, sim0001, …).
        namer = Namer("", {p["id"]: p["category"] for p in presets_doc["presets"]},
                      {p["id"]: p["category"] for p in personas_doc["personaExamples"]}, user_pattern=r"sim\d{4}")
        recorder = Recorder(outputs["TableName"], namer)
        recorder.install()
        dependencies.reset()
        presets.seed(presets_doc, personas_doc, storage=dependencies.get_deps().storage,
                     render=lambda entry: img.jpeg(512, 640))
        from app import app

        server = LocalServer(app, Site(api_url=outputs["ApiUrl"], jwt_secret=SECRET, access_log=False),
                             port=stack["port"]).start()
        feeder = Feeder(app, outputs["AwsEndpoint"], outputs["Region"],
                        client=stack["provisioner"].client("sqs")).start()
        api = outputs["ApiUrl"] + "/api/apps/avatar-creator"
        users = [User(f"sim{n:04d}", issue_token(f"sim{n:04d}", secret=SECRET)) for n in range(args.users)]
        preset_ids = [p["id"] for p in presets_doc["presets"]]
        photo = img.jpeg(400, 400)
        import boto3

        sqs = boto3.session.Session().client("sqs", region_name=outputs["Region"], endpoint_url=outputs["AwsEndpoint"])

        # ---- each user: a project and one ready avatar (not recorded) ----
        t0 = time.monotonic()

        def setup(u: User) -> None:
            u.project = u.http.post(f"{api}/projects", json={"name": "Sim"}, timeout=30).json()["id"]
            created = u.http.post(f"{api}/projects/{u.project}/avatars/upload", timeout=30,
                                  json={"name": "A", "contentType": "image/jpeg", "size": len(photo)}).json()
            browser_post(created["upload"]["url"], created["upload"]["fields"], photo)
            u.avatars.append(created["avatar"]["id"])

        run_all(users, setup, args.clients)
        for u in users:
            poll(lambda: u.http.get(f"{api}/avatars/{u.avatars[0]}", timeout=30).json(),
                 lambda a: a.get("status") == "ready", timeout=120)
        # The table's stream → the stream worker, as Lambda's event source: what the set-up wrote is
        # fed now (not recorded); from the window on, a poller thread feeds it as it comes.
        from local.streams import StreamFeeder

        streams = StreamFeeder(app, outputs["AwsEndpoint"], outputs["Region"], table_name=outputs["TableName"],
                               checkpoint_path=os.path.join(data_dir, "stream-checkpoints.json"),
                               ddb_client=stack["provisioner"].client("dynamodb"),
                               on_failure_queue_url=outputs["StreamDlqUrl"], sqs_client=stack["provisioner"].client("sqs"))
        streams.sources = streams.discover()
        streams.drain(max_rounds=10_000)
        setup_seconds = time.monotonic() - t0

        # ---- the window: the model's mix ----
        weights = mix()
        actions, probabilities = list(weights), list(weights.values())
        done: dict[str, int] = defaultdict(int)
        failures: dict[str, list] = defaultdict(list)
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds
        op = {"function": "sim", "per": 1, "touches": [], "requests": defaultdict(int), "aws_seconds": 0.0,
              "s3_put_bytes": defaultdict(int), "s3_deleted_objects": 0, "sqs": defaultdict(int), "provider_calls": 0}
        recorder.op = op
        streams.start()
        started = time.monotonic()

        def act(u: User, action: str) -> tuple[list[str], Any]:
            """Runs one action; returns the profile operations it stands for, and the failing response if any."""
            with u.lock:
                aid = random.choice(u.avatars)
                gid = random.choice(u.generations) if u.generations else None
            get = {"GET /projects": "/projects", "GET /projects/{id}": f"/projects/{u.project}",
                   "GET /projects/{id}/avatars": f"/projects/{u.project}/avatars",
                   "GET /avatars/{id}": f"/avatars/{aid}",
                   "GET /stats": "/stats", "GET /presets": "/presets", "GET /persona-examples": "/persona-examples",
                   "GET /avatars/{id}/usage-history": f"/avatars/{aid}/usage-history",
                   "GET /projects/{id}/generations": f"/projects/{u.project}/generations"}
            if action in get:
                r = u.http.get(api + get[action], timeout=60)
                return ([action], None) if r.status_code == 200 else ([], r)
            if action == "GET /generations/{id}":
                if gid is None:
                    return [], None
                r = u.http.get(f"{api}/generations/{gid}", timeout=60)
                return ([action], None) if r.status_code == 200 else ([], r)
            if action == "POST /avatars/{id}/usage":
                r = u.http.post(f"{api}/avatars/{aid}/usage", timeout=60,
                                json={"eventId": f"evt-{uuid.uuid4().hex}", "appId": "app-0", "appName": "App",
                                      "action": "use"})
                return ([action], None) if r.status_code in (200, 201) else ([], r)
            if action == "upload":
                r = u.http.post(f"{api}/projects/{u.project}/avatars/upload", timeout=60,
                                json={"name": "B", "contentType": "image/jpeg", "size": len(photo)})
                if r.status_code != 201:
                    return [], r
                created = r.json()
                post = browser_post(created["upload"]["url"], created["upload"]["fields"], photo)
                if post.status_code >= 300:
                    return [], post
                return ["POST /projects/{id}/avatars/upload", "upload_worker (per upload)"], None
            if action in ("POST /projects/{id}/avatars/generate", "POST /presets/{id}/generate"):
                headers = {"Idempotency-Key": uuid.uuid4().hex}
                if action.startswith("POST /presets"):
                    r = u.http.post(f"{api}/presets/{random.choice(preset_ids)}/generate", headers=headers,
                                    json={"projectId": u.project}, timeout=60)
                else:
                    r = u.http.post(f"{api}/projects/{u.project}/avatars/generate", headers=headers, timeout=60,
                                    json={"prompt": "confident business woman", "name": "G", "gender": "female",
                                          "style": "professional"})
                if r.status_code != 202:
                    return [], r
                with u.lock:
                    u.generations.append(r.json()["id"])
                return [action, "generation_worker (per generation)"], None
            if action == "usage batch":
                from tests.support.usage import event

                sqs.send_message_batch(QueueUrl=outputs["UsageEventsQueueUrl"], Entries=[
                    {"Id": str(n), "MessageBody": json.dumps(event(u.name, aid, appId=f"app-{n % 3}"))}
                    for n in range(10)])
                return ["usage_worker (per event)"] * 10, None
            raise ValueError(action)

        def client() -> None:
            while time.monotonic() < stop_at:
                action = random.choices(actions, probabilities)[0]
                u = random.choice(users)
                try:
                    ran, failed = act(u, action)
                except requests.RequestException as exc:
                    ran, failed = [], exc
                with lock:
                    for name in ran:
                        done[name] += 1
                    if failed is not None:
                        failures[action].append(getattr(failed, "status_code", repr(failed)))

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        window = time.monotonic() - started
        # ---- drain: every job, upload and event of the window is processed ----
        drained = wait_drained(sqs, outputs, users, recorder, timeout=300)
        streams.stop()
        streams.drain(max_rounds=10_000)  # what the poller had not fed yet
        stream_errors = streams.errors
        recorder.op = None
        drain_seconds = time.monotonic() - started - window
    finally:
        if feeder is not None:
            feeder.stop()
        if server is not None:
            server.stop()
        stack["ministack"].stop()

    if args.dump:
        (RESULTS / "capacity-sim-recording.json").write_text(json.dumps({"done": done, "touches": op["touches"],
                                                                        "requests": op["requests"]}) + "\n")
    text = compare(profile, op, done, failures, args, window, setup_seconds, drain_seconds, drained, key_requests)
    text += (f"\nThe stream worker ran on the table's stream throughout (local.streams, as Lambda's event source); "
             f"batches it failed: {stream_errors}.\n")
    write("capacity_sim", text)
    print(text)
    bad = sum(len(v) for v in failures.values()) + stream_errors
    return 0 if drained and not bad and "**outside**" not in text else 1


def run_all(users: list, fn, clients: int) -> None:
    pending = list(users)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                u = pending.pop()
            fn(u)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_drained(sqs: Any, outputs: dict, users: list, recorder: Any, timeout: float) -> bool:
    """Queues empty and every generation finished (each job's last write has happened). Statuses are
    read with the recorder's own client, so these reads are not counted."""
    deadline = time.monotonic() + timeout
    queues = [outputs[k] for k in ("UploadQueueUrl", "GenerationQueueUrl", "UsageEventsQueueUrl")]
    while time.monotonic() < deadline:
        busy = 0
        for url in queues:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            busy += int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        if busy == 0:
            active = 0
            for u in users:
                for gid in u.generations:
                    item = recorder._get({"PK": {"S": f"U#{u.name}#G#{gid}"}, "SK": {"S": "META"}}) or {}
                    active += item.get("status", {}).get("S") not in ("completed", "failed", "cancelled")
            if active == 0:
                return True
        time.sleep(1.0)
    return False


def compare(profile: dict, op: dict, done: dict, failures: dict, args: Any, window: float, setup_seconds: float,
            drain_seconds: float, drained: bool, key_requests) -> str:
    measured = key_requests(op)
    succeeded = key_requests(op, succeeded_only=True)
    uncached: dict[tuple, float] = {}
    predicted: dict[tuple, float] = defaultdict(float)
    for name, n in done.items():
        # the operation's own requests, and the stream worker's on what it wrote (the sim's users
        # have no webhooks: the stream worker's requests are its Query for them, per published record batch)
        for source in (name, f"stream_worker ({name})"):
            if source not in profile["ops"]:
                continue
            for key, count in key_requests(profile["ops"][source]).items():
                predicted[key] += n * count / profile["ops"][source]["per"]
    gallery = {k for k in set(measured) | set(predicted) if k[0] == "read" and k[2] in ("PRESET", "PERSONA")}
    for name, loads in (("gallery cache refresh", done.get("GET /presets", 0)),
                        ("persona examples cache refresh", done.get("GET /persona-examples", 0))):
        for key, count in key_requests(profile["ops"][name]).items():
            uncached[key] = uncached.get(key, 0) + loads * count
    rows, judged, outside = [], 0, 0
    for key in sorted(set(measured) | set(predicted), key=lambda k: -predicted.get(k, 0)):
        if key in gallery:
            continue
        m, p = succeeded.get(key, 0), predicted.get(key, 0)
        ratio = m / p if p else float("inf")
        if p >= MIN_PREDICTED:
            judged += 1
            ok = abs(ratio - 1) <= TOLERANCE
            outside += not ok
            verdict = "ok" if ok else "**outside**"
        else:
            verdict = "(too few to judge)"
        label = f"{key[0]} {key[1] or 'table'} `{'/'.join(k for k in key[2:] if k)}`"
        rows.append(f"| {label} | {p:.0f} | {m:.0f} | {measured.get(key, 0):.0f} | {ratio:.2f} | {verdict} |")
    from chalicelib.presets.service import GALLERY_TTL_SECONDS

    per_ttl = math.ceil((window + drain_seconds) / GALLERY_TTL_SECONDS)
    gallery_rows = [f"| {k[0]} {k[1] or 'table'} `{k[2]}` | {uncached.get(k, 0):.0f} | ≤ {per_ttl} (one process) | "
                    f"{measured.get(k, 0):.0f} |" for k in sorted(gallery | set(uncached))]
    total_api = sum(n for name, n in done.items() if name.startswith(("GET", "POST")))
    usage_events = done.get("usage_worker (per event)", 0) + done.get("POST /avatars/{id}/usage", 0)
    usage_tx = len({t["request"] for t in op["touches"] if t["sk"] == "EVT"})
    errors = sum(len(v) for v in failures.values())
    ops_rows = [f"| {name} | {n} |" for name, n in sorted(done.items(), key=lambda kv: -kv[1])]
    return f"""# Capacity model against the local stack

Measured {today()} on {machine()}.
Rerun: `.venv/bin/python -m bench.capacity_sim --users {args.users} --clients {args.clients} --seconds {args.seconds:g}`.

{args.users} users (a token each, a project and a ready avatar each, set up in {setup_seconds:.0f} s) and
{args.clients} client threads running the model's mix (bench/capacity.py `daily_counts`: reads of a
session, uploads, generations from a prompt and from a preset, usage events over HTTP and in batches
of 10 on the queue) for {window:.0f} s against the stack composed as `make run` does (ministack over
HTTP, the threaded local server, the SQS feeder, the offline provider), then {drain_seconds:.0f} s to
drain the queues{'' if drained else ' (**did not drain**)'}. Every DynamoDB request the app made was
recorded by key template and compared with the prediction from the recorded profile (requests per
operation × operations run). Tolerance ±{TOLERANCE:.0%}, judged on the requests that succeeded (the
model's path); refused attempts the code retries are shown beside them. Keys predicted < {MIN_PREDICTED}
requests are shown only.

**{total_api} API calls ({total_api / window:.1f}/s), {errors} errors; {judged} keys judged, {outside} outside ±{TOLERANCE:.0%}.**
{('Errors: ' + json.dumps({k: v[:5] for k, v in failures.items()})) if errors else ''}
DynamoDB requests refused (retried by the code, not errors to the caller): {json.dumps(dict(op.get("errors") or {})) or 'none'};
usage events: {usage_events} recorded with {usage_tx} transactions ({usage_tx / max(1, usage_events):.2f} per event; the profile: one per batch of one user's events on the queue, one per event over HTTP).

| operations run | count |
|---|---|
""" + "\n".join(ops_rows) + """

| requests on key (read/write = requests touching the partition; item-write = items written) | predicted | measured (succeeded) | measured (all attempts) | ratio (succeeded) | |
|---|---|---|---|---|---|
""" + "\n".join(rows) + """

Gallery reads (`PRESET`, `PERSONA` partitions): one Query per process per 60 s with the cache,
whatever the number of loads (the popularity writes on `PRESET` are per preset generation and are in
the table above):

| key | if every load read it (before the cache) | predicted with the cache | measured |
|---|---|---|---|
""" + "\n".join(gallery_rows) + "\n"


if __name__ == "__main__":
    sys.exit(main())
