"""Faults on the local stack: jobs in flight when the whole stack is stopped (SIGTERM) and started
again on the same data dir, and when the process feeding the workers is killed (SIGKILL).
Afterwards every generation is completed or failed (none stuck), each completed one has exactly one
ready avatar with its files, and the counters match."""
from __future__ import annotations

import os
import signal
import time
import uuid

import requests

from tests.support.local_stack import LocalStack
from tests.support.uploads import poll

JOBS = 6
ENV = {"LOCAL_SEED": "0", "GENERATION_ACTIVE_LIMIT": "20"}


def submit(stack, http, pid) -> list[str]:
    return [http.post(stack.api(f"/projects/{pid}/avatars/generate"), timeout=10,
                      json={"prompt": "studio portrait", "name": f"J{i}", "width": 512, "height": 640}).json()["id"]
            for i in range(JOBS)]


def processes_in(directory) -> list[int]:
    """Pids whose working directory is `directory` (ministack runs in its data dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(directory):
                    found.append(int(entry))
            except OSError:
                pass
    return found


def started_jobs(stack, user_prefix: str):
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.token(f'{user_prefix}-{uuid.uuid4().hex[:6]}')}"
    pid = http.post(stack.api("/projects"), json={"name": user_prefix}, timeout=10).json()["id"]
    return http, pid, submit(stack, http, pid)


def settle(stack, http, pid, ids) -> None:
    finals = [poll(lambda g=gid: http.get(stack.api(f"/generations/{g}"), timeout=10).json(),
                   lambda g: g["status"] in ("completed", "failed"), timeout=60, interval=0.1) for gid in ids]
    assert all(g["status"] in ("completed", "failed") for g in finals), [(g["id"], g["status"]) for g in finals]
    completed = [g for g in finals if g["status"] == "completed"]
    avatars = http.get(stack.api(f"/projects/{pid}/avatars?limit=100"), timeout=10).json()["items"]
    assert sorted(a["generationId"] for a in avatars) == sorted(g["id"] for g in completed)
    for a in avatars:
        assert a["status"] == "ready" and requests.get(a["thumbnailUrl"], timeout=10).status_code == 200
    stats = http.get(stack.api("/stats"), timeout=10).json()
    assert (stats["totalAvatars"], stats["activeGenerations"]) == (len(completed), 0)
    project = http.get(stack.api(f"/projects/{pid}"), timeout=10).json()
    assert project["avatarCount"] == len(completed)


def test_sigterm_restart_with_jobs_in_flight_loses_nothing(tmp_path):
    data = tmp_path / "stack"
    stack = LocalStack(data, env=ENV).start()
    try:
        http, pid, ids = started_jobs(stack, "restart")
        assert stack.stop() == 0  # SIGTERM while jobs are queued or running
        stack = LocalStack(data, port=stack.port, aws_port=stack.aws_port, env=ENV).start()
        settle(stack, http, pid, ids)
    finally:
        stack.stop()


def test_sigkill_of_the_worker_process_mid_job_loses_nothing(tmp_path):
    data = tmp_path / "stack"
    stack = LocalStack(data, env=ENV).start()
    try:
        http, pid, ids = started_jobs(stack, "kill")
        time.sleep(0.3)  # some jobs claimed, some not
        os.kill(stack.proc.pid, signal.SIGKILL)  # the process running the feeders and handlers
        stack.proc.wait(10)
        stack.proc = None
        # ministack gets SIGTERM from the kernel when its parent dies (PR_SET_PDEATHSIG) and saves
        # its state — as DynamoDB, S3 and SQS keep theirs on AWS when a Lambda dies. Wait for it.
        # Its port closes before it has written everything: wait for the process itself (its cwd is
        # the data dir) to be gone.
        deadline = time.monotonic() + 60
        while processes_in(data) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not processes_in(data), "ministack did not exit after its parent was killed"
        stack = LocalStack(data, env=ENV).start(timeout=90)
        settle(stack, http, pid, ids)
    finally:
        stack.stop()
