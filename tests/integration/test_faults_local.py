"""Faults on the embedded local stack (ministack over HTTP, the feeders, the sweeper's schedule): a
duplicate job message while the job runs, a project deleted mid-generation, a burst over the quota
with Idempotency-Keys, and `make audit` on what all of that left."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests

from tests.support.fake_flux import FakeFlux
from tests.support.local_stack import ROOT, LocalStack
from tests.support.uploads import poll

REQUEST = {"prompt": "a calm portrait", "name": "Slow", "width": 256, "height": 256}


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory):
    """A stack whose provider takes 4 s per image (longer than the queues' 3 s visibility)."""
    with FakeFlux(["late-ok"], slow_seconds=4, retry_after=0) as fake:
        stack = LocalStack(tmp_path_factory.mktemp("faults"), env={
            "FLUX_ENDPOINT_URL": fake.url, "SAFETY_ENDPOINT_URL": fake.safety_url, "HF_TOKEN": "hf_local_test", "FLUX_TIMEOUT_SECONDS": "20",
            "LOCAL_SEED": "0", "LOCAL_SWEEP_SECONDS": "2", "GENERATION_ACTIVE_LIMIT": "3"}).start()
        try:
            yield stack, fake
        finally:
            stack.stop()


def session(stack, user=None):
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.token(user or f'fault-{uuid.uuid4().hex[:8]}')}"
    return http


def aws(stack, service):
    return boto3.client(service, endpoint_url=stack.outputs["AwsEndpoint"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def generation(stack, http, gid):
    return http.get(stack.api(f"/generations/{gid}"), timeout=10).json()


def files_of(stack, user):
    s3 = aws(stack, "s3")
    return [o["Key"] for prefix in ("images/", "thumbs/")
            for o in s3.list_objects_v2(Bucket=stack.outputs["UploadBucket"], Prefix=f"{prefix}{user}/").get("Contents", [])]


def test_a_duplicate_job_message_while_the_job_runs_makes_one_provider_call(slow_stack):
    stack, fake = slow_stack
    user = f"dup-{uuid.uuid4().hex[:6]}"
    http = session(stack, user)
    pid = http.post(stack.api("/projects"), json={"name": "Dup"}, timeout=10).json()["id"]
    gid = http.post(stack.api(f"/projects/{pid}/avatars/generate"), json={**REQUEST, "seed": 4242},
                    timeout=10).json()["id"]
    poll(lambda: generation(stack, http, gid), lambda g: g["stage"] == "generating", timeout=20)
    aws(stack, "sqs").send_message(QueueUrl=stack.outputs["GenerationQueueUrl"],
                                   MessageBody=json.dumps({"userId": user, "generationId": gid}))
    done = poll(lambda: generation(stack, http, gid), lambda g: g["status"] in ("completed", "failed"), timeout=40)
    assert done["status"] == "completed"
    # Wait for every delivery of the duplicate to end (it found the job taken), not a fixed time.
    idle = poll(lambda: stack.queues_idle("GenerationQueueUrl"), bool, timeout=20, interval=0.1)
    assert idle, "the generation queue still holds a message"
    calls = [r for r in fake.requests if r["json"]["parameters"].get("seed") == 4242]
    assert len(calls) == 1


def test_a_project_deleted_mid_generation_leaves_no_files(slow_stack):
    stack, _ = slow_stack
    user = f"del-{uuid.uuid4().hex[:6]}"
    http = session(stack, user)
    pid = http.post(stack.api("/projects"), json={"name": "Doomed"}, timeout=10).json()["id"]
    gid = http.post(stack.api(f"/projects/{pid}/avatars/generate"), json=REQUEST, timeout=10).json()["id"]
    poll(lambda: generation(stack, http, gid), lambda g: g["stage"] == "generating", timeout=20)
    assert http.delete(stack.api(f"/projects/{pid}"), timeout=10).status_code == 204
    gone = poll(lambda: http.get(stack.api(f"/generations/{gid}"), timeout=10).status_code,
                lambda code: code == 404, timeout=40)
    assert gone == 404
    # The job's run ends (its image arrives after 4 s) and finds nothing to complete; the project's
    # clean-up has run. Wait for both queues to be done rather than a fixed time.
    idle = poll(lambda: stack.queues_idle("GenerationQueueUrl", "CleanupQueueUrl"), bool, timeout=30, interval=0.1)
    assert idle, "the generation or clean-up queue still holds a message"
    assert files_of(stack, user) == []
    assert http.get(stack.api("/stats"), timeout=10).json()["activeGenerations"] == 0


def test_a_burst_over_the_quota_with_keys_answers_only_202_and_429(slow_stack):
    stack, _ = slow_stack
    http = session(stack)
    pid = http.post(stack.api("/projects"), json={"name": "Burst"}, timeout=10).json()["id"]

    def one(i):
        return http.post(stack.api(f"/projects/{pid}/avatars/generate"), json={**REQUEST, "seed": i},
                         headers={"Idempotency-Key": f"burst-{i % 6}-{pid}"}, timeout=20)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(12)))
    codes = sorted({a.status_code for a in answers})
    assert set(codes) <= {200, 202, 409, 429}, [(a.status_code, a.text[:200]) for a in answers]
    # keys repeat with other seeds: a replay with a different body is a 409, never a 5xx
    assert 202 in codes and 429 in codes
    too_many = [a for a in answers if a.status_code == 429]
    assert all(a.json()["error"]["details"]["kind"] == "active" and a.headers["Retry-After"] for a in too_many)


def test_audit_is_clean_after_the_faults(slow_stack):
    """Once the jobs of the tests above have settled (4 s each, two at a time), nothing is wrong."""
    stack, _ = slow_stack

    def audit():
        return subprocess.run([sys.executable, "-m", "infra.audit", "--outputs", str(stack.data_dir / "outputs.json")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    result = poll(audit, lambda r: r.returncode == 0, timeout=90, interval=3)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 finding(s)" in result.stderr
