"""Load on the local stack: 16 concurrent clients (threads with keep-alive sessions) calling the read
routes for a fixed time; requests/s, p50/p99 per route, error count.

    .venv/bin/python -m bench.load [--clients 16] [--seconds 15]
"""
from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import defaultdict

import requests

from bench.common import machine, pct, start_stack, today, write
from tests.support import images as img
from tests.support.uploads import browser_post, poll


def seed(stack, users: int = 4) -> list[dict]:
    """Per user: a project with a few ready avatars (uploaded through the real flow), usage on one."""
    out = []
    for n in range(users):
        user = f"load-{n}"
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {stack.token(user)}"
        pid = http.post(stack.api("/projects"), json={"name": f"Load {n}"}, timeout=10).json()["id"]
        avatar_ids = []
        for k in range(3):
            data = img.jpeg(400, 400)
            created = http.post(stack.api(f"/projects/{pid}/avatars/upload"), timeout=10,
                                json={"name": f"A{k}", "contentType": "image/jpeg", "size": len(data)}).json()
            browser_post(created["upload"]["url"], created["upload"]["fields"], data)
            avatar_ids.append(created["avatar"]["id"])
        for aid in avatar_ids:
            poll(lambda: http.get(stack.api(f"/avatars/{aid}"), timeout=10).json(), lambda a: a["status"] == "ready",
                 timeout=20)
        http.post(stack.api(f"/avatars/{avatar_ids[0]}/usage"), timeout=10,
                  json={"appId": "pose-generator", "appName": "Pose", "action": "use"})
        out.append({"user": user, "token": http.headers["Authorization"], "project": pid, "avatars": avatar_ids})
    return out


def wait_for_gallery(stack, token: str, timeout: float = 60.0) -> None:
    """The stack loads the preset gallery in the background at start; measure after it is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = requests.get(stack.api("/presets?limit=100"), headers={"Authorization": token}, timeout=10).json()
        if len(page["items"]) >= 24 and all(p["thumbnailUrl"] for p in page["items"]):
            return
        time.sleep(0.5)


def routes(u: dict) -> list[tuple[str, str]]:
    a = random.choice(u["avatars"])
    return [("GET /projects", "/projects"), ("GET /projects/{id}", f"/projects/{u['project']}"),
            ("GET /projects/{id}/avatars", f"/projects/{u['project']}/avatars"), ("GET /avatars/{id}", f"/avatars/{a}"),
            ("GET /avatars/{id}/usage-history", f"/avatars/{a}/usage-history"), ("GET /stats", "/stats"),
            ("GET /presets", "/presets")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args(argv)
    stack = start_stack()
    try:
        users = seed(stack)
        wait_for_gallery(stack, users[0]["token"])
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        lock = threading.Lock()
        ready = threading.Barrier(args.clients + 1)
        window: dict[str, float] = {}

        def client(i: int) -> None:
            u = users[i % len(users)]
            http = requests.Session()
            http.headers["Authorization"] = u["token"]
            # Warm-up, not measured: the server opens a thread per connection and each thread builds
            # its own AWS clients once (as each Lambda container does on its first request).
            for _, path in routes(u):
                http.get(stack.api(path), timeout=60)
            ready.wait()
            ready.wait()  # the main thread has set the window
            while time.monotonic() < window["stop"]:
                name, path = random.choice(routes(u))
                t0 = time.perf_counter()
                try:
                    ok = http.get(stack.api(path), timeout=30).status_code == 200
                except requests.RequestException:
                    ok = False
                dt = time.perf_counter() - t0
                with lock:
                    latencies[name].append(dt)
                    if not ok:
                        errors[name] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        ready.wait()
        started = time.monotonic()
        window["stop"] = started + args.seconds
        ready.wait()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        audit = run_audit(stack)
    finally:
        stack.stop()
    total = sum(len(v) for v in latencies.values())
    rows = [f"| {name} | {len(v)} | {len(v) / elapsed:.1f} | {pct(v, 50) * 1000:.1f} ms | {pct(v, 99) * 1000:.1f} ms | {errors[name]} |"
            for name, v in sorted(latencies.items())]
    text = f"""# Load on the local stack

Measured {today()} on {machine()}.
Rerun: `.venv/bin/python -m bench.load --clients {args.clients} --seconds {args.seconds:g}`.

{args.clients} client threads (keep-alive sessions, 4 users with 3 ready avatars each; each client warms
up with one call per route first, not measured) call the read routes at random for {args.seconds:g} s against `make run`'s server (the Chalice app in a threaded HTTP
server, ministack for DynamoDB/S3 — everything on the same {machine().split(' (')[0]}). Presigned URLs are
signed in every avatar response.

**{total / elapsed:.0f} requests/s in total, {sum(errors.values())} errors.** `make audit` on the stack afterwards:
{audit.strip() or "no output"}.

| route | requests | req/s | p50 | p99 | errors |
|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    write("load", text)
    print(text)
    return 0 if not sum(errors.values()) and audit.endswith("0 finding(s)") else 1


def run_audit(stack) -> str:
    """infra.audit against the stack just measured: what the load left must hold every invariant."""
    import subprocess

    from tests.support.local_stack import ROOT

    result = subprocess.run([sys.executable, "-m", "infra.audit", "--outputs", str(stack.data_dir / "outputs.json")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    return (result.stdout + result.stderr).strip().splitlines()[-1] if (result.stdout + result.stderr).strip() else ""


if __name__ == "__main__":
    sys.exit(main())
