"""Generation on the embedded local stack: the API, the generation queue fed like Lambda's event
source mapping, ministack's redrive to the DLQ, the DLQ worker — with the offline provider, and
with the real InferenceClient talking to a fake FLUX endpoint through FLUX_ENDPOINT_URL."""
from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.support.fake_flux import FakeFlux
from tests.support.local_stack import LocalStack
from tests.support.uploads import poll

REQUEST = {"prompt": "confident business woman", "name": "Sarah", "personaName": "Sarah", "personaAge": 32,
           "gender": "female", "width": 512, "height": 640}


def session(stack: LocalStack, user: str | None = None):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {stack.token(user or f'gen-{uuid.uuid4().hex[:8]}')}"
    return s


def start(stack, http) -> tuple[str, dict]:
    pid = http.post(stack.api("/projects"), json={"name": "Gen"}, timeout=10).json()["id"]
    resp = http.post(stack.api(f"/projects/{pid}/avatars/generate"), json=REQUEST, timeout=10)
    assert resp.status_code == 202, resp.text
    return pid, resp.json()


def follow(stack, http, gid, until=("completed", "failed"), timeout=30.0) -> list[dict]:
    """Every distinct state seen while polling, the last one final."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gen = http.get(stack.api(f"/generations/{gid}"), timeout=10).json()
        if not seen or (gen["status"], gen["progress"]) != (seen[-1]["status"], seen[-1]["progress"]):
            seen.append(gen)
        if gen["status"] in until:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"generation {gid} stuck: {seen[-1] if seen else None}")


def test_offline_generation_completes_and_the_avatar_appears_with_a_thumbnail(local_stack):
    http = session(local_stack)
    pid, gen = start(local_stack, http)
    states = follow(local_stack, http, gen["id"])
    final = states[-1]
    assert (final["status"], final["progress"], final["attempts"]) == ("completed", 100, 1)
    assert states[0]["status"] in ("pending", "processing")
    assert [s["progress"] for s in states] == sorted(s["progress"] for s in states)  # progress only grows
    avatar = final["avatar"]
    thumb = requests.get(avatar["thumbnailUrl"], timeout=10)
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    listed = http.get(local_stack.api(f"/projects/{pid}/avatars"), timeout=10).json()["items"]
    assert [a["id"] for a in listed] == [avatar["id"]] and listed[0]["sourceType"] == "text_to_image"


@pytest.fixture(scope="module")
def flux_stack(tmp_path_factory):
    """A second stack whose generation worker calls a fake FLUX endpoint, with 1 s backoff."""
    with FakeFlux(["ok"], retry_after=0) as fake:
        stack = LocalStack(tmp_path_factory.mktemp("flux-stack"), env={
            "FLUX_ENDPOINT_URL": fake.url, "SAFETY_ENDPOINT_URL": fake.safety_url, "HF_TOKEN": "hf_local_test", "GENERATION_BACKOFF_SECONDS": "1",
            "FLUX_TIMEOUT_SECONDS": "2", "LOCAL_SEED": "0"}).start()  # no preset previews eating the script
        try:
            yield stack, fake
        finally:
            stack.stop()


def test_flux_failing_twice_then_succeeding_completes_after_three_attempts(flux_stack):
    stack, fake = flux_stack
    fake.script = ["503", "503", "ok"]
    before = len(fake.requests)
    http = session(stack)
    _, gen = start(stack, http)
    final = follow(stack, http, gen["id"])[-1]
    assert (final["status"], final["attempts"]) == ("completed", 3)
    assert len(fake.requests) - before == 3
    assert fake.requests[-1]["authorization"] == "Bearer hf_local_test"


def test_flux_always_failing_ends_failed_on_the_last_attempt_and_gives_the_quota_back(flux_stack):
    stack, fake = flux_stack
    fake.script = ["503"]
    http = session(stack)
    before = http.get(stack.api("/stats"), timeout=10).json()["generationsToday"]
    pid, gen = start(stack, http)
    failed = follow(stack, http, gen["id"], until=("failed",))[-1]
    assert failed["attempts"] == 3 and "unavailable" in failed["errorMessage"]
    # The worker ended it on its last attempt (the DLQ is for handling that keeps crashing), and the
    # provider's failure is not charged to the user.
    assert failed["deadLetteredAt"] is None and failed["errorCode"] == "provider_unavailable"
    assert http.get(stack.api("/stats"), timeout=10).json()["generationsToday"] == before
    active = http.get(stack.api(f"/projects/{pid}/generations?status=active"), timeout=10).json()
    assert active["items"] == []
    fake.script = ["ok"]
