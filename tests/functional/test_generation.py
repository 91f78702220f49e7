"""Generation over moto: the API, the worker fed like Lambda's event source mapping, the real
`InferenceClient` against a local fake FLUX server, the offline provider, quotas and the DLQ."""
from __future__ import annotations

import io
import json

import boto3
import pytest
from PIL import Image

from chalicelib import dependencies
from tests.functional.conftest import PREFIX, auth, body
from tests.support.fake_flux import FakeFlux
from tests.support.generation import deliver, receive_raw

REQUEST = {"prompt": "confident business woman", "name": "Sarah", "personaName": "Sarah", "personaAge": 32,
           "personaPersonality": ["professional"], "gender": "female", "ageRange": "middle-aged",
           "ethnicity": "asian", "style": "professional", "width": 512, "height": 640, "seed": 42}


@pytest.fixture
def env(aws, monkeypatch):
    def set_env(**values):
        for key, value in values.items():
            monkeypatch.setenv(key, str(value))
        dependencies.reset()
    set_env(GENERATION_BACKOFF_SECONDS="0", GENERATION_PROVIDER="offline")
    return set_env


@pytest.fixture
def flux(env):
    """A fake FLUX endpoint the real InferenceClient talks to; `flux.script` sets its answers."""
    with FakeFlux(["ok"], retry_after=0) as fake:
        env(GENERATION_PROVIDER="hf", FLUX_ENDPOINT_URL=fake.url, HF_TOKEN="hf_test_token", FLUX_TIMEOUT_SECONDS="1",
            SAFETY_ENDPOINT_URL=fake.safety_url, SAFETY_TIMEOUT_SECONDS="1")
        yield fake


def project(client, user="alice") -> str:
    resp = client.http.post(f"{PREFIX}/projects", headers=auth(user), body=body({"name": "Gen"}))
    return resp.json_body["id"]


def generate(client, pid, user="alice", headers=None, **overrides):
    return client.http.post(f"{PREFIX}/projects/{pid}/avatars/generate", headers={**auth(user), **(headers or {})},
                            body=body({**REQUEST, **overrides}))


def get_gen(client, gid, user="alice"):
    resp = client.http.get(f"{PREFIX}/generations/{gid}", headers=auth(user))
    assert resp.status_code == 200, resp.body
    return resp.json_body


def stats(client, user="alice"):
    return client.http.get(f"{PREFIX}/stats", headers=auth(user)).json_body


def avatars_of(client, pid, user="alice"):
    return client.http.get(f"{PREFIX}/projects/{pid}/avatars", headers=auth(user)).json_body["items"]


def s3_object(key: str) -> bytes:
    bucket = dependencies.get_deps().settings.upload_bucket
    return boto3.client("s3", region_name="us-east-1").get_object(Bucket=bucket, Key=key)["Body"].read()


def key_in(url: str) -> str:
    """The object key of a presigned URL (virtual-hosted: /key; path style: /bucket/key)."""
    from urllib.parse import unquote, urlsplit

    path = unquote(urlsplit(url).path).lstrip("/")
    bucket = dependencies.get_deps().settings.upload_bucket
    return path[len(bucket) + 1:] if path.startswith(bucket + "/") else path


def run_worker(rounds=10):
    return deliver("generation_worker", rounds=rounds)


# ---- the happy path ----------------------------------------------------------------------------

def test_offline_generation_completes_with_a_ready_avatar_and_thumbnail(client, env):
    pid = project(client)
    resp = generate(client, pid)
    assert resp.status_code == 202, resp.body
    gen = resp.json_body
    assert (gen["status"], gen["progress"], gen["attempts"], gen["avatar"]) == ("pending", 0, 0, None)
    assert gen["prompt"].startswith("Sarah, 32 years old, professional personality, female, middle-aged adult")
    assert "cartoon" in gen["negativePrompt"]
    listed = client.http.get(f"{PREFIX}/projects/{pid}/generations?status=active", headers=auth()).json_body
    assert [g["id"] for g in listed["items"]] == [gen["id"]]

    assert run_worker() == 1
    done = get_gen(client, gen["id"])
    assert (done["status"], done["progress"], done["stage"], done["attempts"]) == ("completed", 100, "done", 1)
    avatar = done["avatar"]
    assert (avatar["status"], avatar["sourceType"], avatar["seed"], avatar["generationId"]) == \
        ("ready", "text_to_image", 42, gen["id"])
    assert avatar["prompt"] == gen["prompt"] and avatar["personaName"] == "Sarah" and avatar["gender"] == "female"
    assert (avatar["width"], avatar["height"]) == (512, 640)
    thumb = Image.open(io.BytesIO(s3_object(key_in(avatar["thumbnailUrl"]))))
    assert thumb.size == (300, 300)
    assert [a["id"] for a in avatars_of(client, pid)] == [avatar["id"]]
    s = stats(client)
    assert (s["totalAvatars"], s["bySourceType"]["text_to_image"], s["activeGenerations"]) == (1, 1, 0)
    assert client.http.get(f"{PREFIX}/projects/{pid}/generations?status=active",
                           headers=auth()).json_body["items"] == []
    assert client.http.get(f"{PREFIX}/projects/{pid}", headers=auth()).json_body["avatarCount"] == 1


def test_flux_request_carries_prompt_size_seed_and_token(client, flux):
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    assert get_gen(client, gen["id"])["status"] == "completed"
    [call] = flux.requests
    assert call["json"]["inputs"] == gen["prompt"] and call["authorization"] == "Bearer hf_test_token"
    params = call["json"]["parameters"]
    assert (params["width"], params["height"], params["seed"]) == (512, 640, 42)
    assert params["negative_prompt"] == gen["negativePrompt"]
    assert params["num_inference_steps"] > 0 and params["guidance_scale"] > 0


# ---- retries, failures, the DLQ ------------------------------------------------------------------

def test_two_503s_then_success_completes_after_three_attempts(client, flux):
    flux.script = ["503", "503", "ok"]
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["attempts"], done["errorMessage"]) == ("completed", 3, None)
    assert len(flux.requests) == 3 and len(avatars_of(client, pid)) == 1


def test_a_provider_that_keeps_failing_ends_failed_after_its_attempts_and_leaves_no_message(client, flux, aws):
    """The worker itself ends the job on its last attempt; the DLQ is for messages whose handling
    keeps crashing (see test_dlq_worker_fails_a_job_left_active)."""
    flux.script = ["503"]
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    failed = get_gen(client, gen["id"])
    assert (failed["status"], failed["attempts"]) == ("failed", 3)
    assert "unavailable" in failed["errorMessage"] and "3 attempts" in failed["errorMessage"]
    assert receive_raw(aws["GenerationDlqUrl"]) == [] and receive_raw(aws["GenerationQueueUrl"]) == []
    assert avatars_of(client, pid) == [] and stats(client)["activeGenerations"] == 0
    assert stats(client)["generationsToday"] == 0  # the provider's failure: given back


def test_dlq_worker_fails_a_job_left_active(client, env, aws):
    """Crashes (timeouts, OOM) on every attempt leave the generation active; the DLQ handler ends it."""
    pid = project(client)
    gen = generate(client, pid).json_body
    sqs = boto3.client("sqs", region_name="us-east-1")
    message = receive_raw(aws["GenerationQueueUrl"])[0]
    sqs.send_message(QueueUrl=aws["GenerationDlqUrl"], MessageBody=message["Body"])
    sqs.delete_message(QueueUrl=aws["GenerationQueueUrl"], ReceiptHandle=message["ReceiptHandle"])
    assert deliver("generation_dlq_worker") == 1
    failed = get_gen(client, gen["id"])
    assert failed["status"] == "failed" and "gave up" in failed["errorMessage"]
    assert client.http.get(f"{PREFIX}/projects/{pid}/generations?status=active",
                           headers=auth()).json_body["items"] == []


def test_refused_prompt_fails_at_once_with_the_reason(client, flux):
    flux.script = ["400"]
    gen = generate(client, project(client)).json_body
    run_worker()
    failed = get_gen(client, gen["id"])
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert "refused" in failed["errorMessage"] and "safety checker" in failed["errorMessage"]
    assert len(flux.requests) == 1


def test_timeout_and_429_are_retried(client, flux):
    flux.script = ["slow", "429", "ok"]
    flux.slow_seconds = 2.0
    gen = generate(client, project(client)).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["attempts"]) == ("completed", 3)


def test_unusable_image_from_the_provider_fails_the_job(client, flux):
    flux.script = ["garbage"]
    gen = generate(client, project(client)).json_body
    run_worker()
    assert get_gen(client, gen["id"])["status"] == "failed"


def test_retry_of_a_failed_generation_runs_it_again(client, flux):
    flux.script = ["400", "ok"]
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    assert get_gen(client, gen["id"])["status"] == "failed"
    resp = client.http.post(f"{PREFIX}/generations/{gen['id']}/retry", headers=auth())
    assert resp.status_code == 202 and resp.json_body["status"] == "pending"
    run_worker()
    assert get_gen(client, gen["id"])["status"] == "completed"
    again = client.http.post(f"{PREFIX}/generations/{gen['id']}/retry", headers=auth())
    assert again.status_code == 409 and again.json_body["error"]["code"] == "invalid_state"


# ---- exactly one avatar ----------------------------------------------------------------------------

def test_the_same_job_delivered_twice_makes_one_avatar(client, env, aws):
    pid = project(client)
    gen = generate(client, pid).json_body
    sqs = boto3.client("sqs", region_name="us-east-1")
    original = receive_raw(aws["GenerationQueueUrl"])[0]
    sqs.change_message_visibility(QueueUrl=aws["GenerationQueueUrl"], ReceiptHandle=original["ReceiptHandle"],
                                  VisibilityTimeout=0)
    sqs.send_message(QueueUrl=aws["GenerationQueueUrl"], MessageBody=original["Body"])  # an SQS duplicate
    assert run_worker() == 2
    assert len(avatars_of(client, pid)) == 1 and stats(client)["bySourceType"]["text_to_image"] == 1
    assert get_gen(client, gen["id"])["attempts"] == 1


def test_a_duplicate_delivery_while_a_run_holds_the_job_never_calls_the_provider(client, flux, aws):
    from chalicelib.aws.models import GenerationModel
    from chalicelib.generation import jobs, requests

    pid = project(client)
    gen = generate(client, pid).json_body
    settings = dependencies.get_deps().settings
    # Another run claimed the job a moment ago (its lease is live) and is still working on it.
    other = jobs.claim(requests.get("alice", gen["id"], consistent=True), settings)
    assert other is not None
    assert run_worker() == 1  # the duplicate message: it comes back when the lease ends
    assert flux.requests == []
    assert get_gen(client, gen["id"])["status"] == "processing"
    waiting = receive_raw(aws["GenerationQueueUrl"])
    assert waiting == []  # invisible until the lease's end, not dropped
    # That run died: once its lease has ended, the message (here a copy: moto keeps the original
    # invisible for the real lease's length) comes back and takes the job over.
    GenerationModel(other.generation.pk, other.generation.sk).update(actions=[GenerationModel.lease_until.set(0)])
    boto3.client("sqs", region_name="us-east-1").send_message(
        QueueUrl=aws["GenerationQueueUrl"], MessageBody=json.dumps({"userId": "alice", "generationId": gen["id"]}))
    run_worker()
    done = get_gen(client, gen["id"])
    assert done["status"] == "completed" and len(flux.requests) == 1
    # The dead run can no longer write: its token lost the job.
    assert not other.abandon()
    with pytest.raises(jobs.Lost):
        other.hand_on()
    assert len(avatars_of(client, pid)) == 1


def test_same_idempotency_key_returns_the_same_generation(client, env):
    pid = project(client)
    first = generate(client, pid, headers={"Idempotency-Key": "k-123"})
    second = generate(client, pid, headers={"Idempotency-Key": "k-123"})
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json_body["id"] == second.json_body["id"]
    listed = client.http.get(f"{PREFIX}/projects/{pid}/generations", headers=auth()).json_body["items"]
    assert len(listed) == 1
    other = generate(client, pid, headers={"Idempotency-Key": "k-123"}, prompt="something else entirely")
    assert other.status_code == 409 and other.json_body["error"]["code"] == "idempotency_key_reused"
    assert run_worker() == 1


# ---- lifecycle, quotas, isolation, input -----------------------------------------------------------

def test_cancel_while_pending_then_the_worker_skips_it(client, env):
    pid = project(client)
    gen = generate(client, pid).json_body
    resp = client.http.post(f"{PREFIX}/generations/{gen['id']}/cancel", headers=auth())
    assert resp.status_code == 200 and resp.json_body["status"] == "cancelled"
    run_worker()
    assert get_gen(client, gen["id"])["status"] == "cancelled" and avatars_of(client, pid) == []
    again = client.http.post(f"{PREFIX}/generations/{gen['id']}/cancel", headers=auth())
    assert again.status_code == 409


def test_daily_quota_answers_429_with_retry_after(client, env):
    env(GENERATION_DAILY_LIMIT="2")
    pid = project(client)
    assert [generate(client, pid).status_code for _ in range(2)] == [202, 202]
    third = generate(client, pid)
    assert third.status_code == 429 and third.json_body["error"]["code"] == "quota_exceeded"
    assert 0 < int(third.headers["Retry-After"]) <= 86400
    assert len(client.http.get(f"{PREFIX}/projects/{pid}/generations", headers=auth()).json_body["items"]) == 2
    assert generate(client, pid, user="bob").status_code == 404  # bob's quota is his own; alice's project is not


def test_active_job_cap_answers_429_until_a_job_finishes(client, env):
    env(GENERATION_ACTIVE_LIMIT="1")
    pid = project(client)
    assert generate(client, pid).status_code == 202
    blocked = generate(client, pid)
    assert blocked.status_code == 429 and blocked.json_body["error"]["details"]["kind"] == "active"
    run_worker()
    assert generate(client, pid).status_code == 202


def test_a_job_that_cannot_be_queued_is_failed_and_answers_503(client, env, aws):
    pid = project(client)
    env(GENERATION_QUEUE_URL=aws["GenerationQueueUrl"] + "-missing")
    resp = generate(client, pid)
    assert resp.status_code == 503 and resp.json_body["error"]["code"] == "service_unavailable"
    items = client.http.get(f"{PREFIX}/projects/{pid}/generations", headers=auth()).json_body["items"]
    assert [g["status"] for g in items] == ["failed"]
    assert stats(client)["activeGenerations"] == 0


def test_other_users_generation_is_404_everywhere(client, env):
    pid = project(client)
    gen = generate(client, pid).json_body
    for method, path in (("GET", f"/generations/{gen['id']}"), ("POST", f"/generations/{gen['id']}/cancel"),
                         ("POST", f"/generations/{gen['id']}/retry"), ("GET", f"/projects/{pid}/generations")):
        resp = client.http.request(method, f"{PREFIX}{path}", headers=auth("bob"))
        assert resp.status_code == 404, (method, path, resp.body)
        assert resp.json_body["error"]["code"] == "not_found"
    assert generate(client, pid, user="bob").status_code == 404
    assert get_gen(client, gen["id"])["status"] == "pending"


@pytest.mark.parametrize("overrides", [
    {"width": 500}, {"height": 4096}, {"prompt": ""}, {"prompt": "x" * 601}, {"seed": -1}, {"name": ""},
    {"unexpected": 1}, {"personaAge": "32"},
])
def test_invalid_generation_requests_are_400_and_start_nothing(client, env, overrides, aws):
    pid = project(client)
    resp = generate(client, pid, **overrides)
    assert resp.status_code == 400, resp.body
    assert resp.json_body["error"]["code"] == "validation_error"
    assert receive_raw(aws["GenerationQueueUrl"]) == []


def test_bad_idempotency_key_is_400(client, env):
    resp = generate(client, project(client), headers={"Idempotency-Key": "spaces are not allowed"})
    assert resp.status_code == 400


def test_malformed_job_messages_are_dropped(client, env, aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    for text in ("not json", "[]", json.dumps({"userId": "alice", "generationId": "nope"})):
        sqs.send_message(QueueUrl=aws["GenerationQueueUrl"], MessageBody=text)
    assert run_worker() == 3
    assert receive_raw(aws["GenerationQueueUrl"]) == [] and receive_raw(aws["GenerationDlqUrl"]) == []


def test_project_deleted_during_generation_fails_the_job_and_leaves_no_files(client, env, aws):
    pid = project(client)
    gen = generate(client, pid).json_body
    assert client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    run_worker()
    assert get_gen(client, gen["id"])["status"] == "failed"
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=aws["UploadBucket"])
    assert listed.get("KeyCount", 0) == 0


def test_variations_keep_persona_and_attributes_with_new_seeds_and_styles(client, env):
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    source = get_gen(client, gen["id"])["avatar"]
    resp = client.http.post(f"{PREFIX}/avatars/{source['id']}/variations", headers=auth(),
                            body=body({"count": 3, "styles": ["casual", "formal"]}))
    assert resp.status_code == 202, resp.body
    items = resp.json_body["items"]
    assert len(items) == 3 and all(g["status"] == "pending" for g in items)
    run_worker()
    made = [get_gen(client, g["id"])["avatar"] for g in items]
    assert all(a["personaName"] == "Sarah" and a["gender"] == "female" and a["ethnicity"] == "asian" for a in made)
    assert [a["style"] for a in made] == ["casual", "formal", "casual"]
    seeds = {a["seed"] for a in made} | {source["seed"]}
    assert len(seeds) == 4
    assert client.http.post(f"{PREFIX}/avatars/{source['id']}/variations", headers=auth("bob"),
                            body=body({"count": 1})).status_code == 404
    assert client.http.post(f"{PREFIX}/avatars/{source['id']}/variations", headers=auth(),
                            body=body({"count": 9})).status_code == 400


# ---- the content policy speaks the person's language (issue 27) -----------------------------------

def test_a_refused_indonesian_prompt_is_a_400_in_indonesian_naming_rule_and_field(client, env):
    # GIVEN a person whose browser prefers Indonesian
    pid = project(client)
    headers = {"Accept-Language": "id-ID,id;q=0.9,en;q=0.8"}
    # WHEN they ask for a minor in a suggestive pose, the age in words, in Indonesian
    resp = generate(client, pid, headers=headers, prompt="foto gadis enam belas tahun dengan pose menggoda")
    # THEN 400 prompt_rejected, with the rule, the field and a sentence in Indonesian, and nothing queued
    assert resp.status_code == 400, resp.body
    error = resp.json_body["error"]
    assert error["code"] == "prompt_rejected"
    assert error["details"]["rule"] == "minors" and error["details"]["field"] == "prompt"
    assert error["details"]["policy"] == "content-policy.v2" and error["details"]["language"] == "id"
    assert error["message"].startswith("Kami tidak dapat membuat avatar ini") and "di bawah 18 tahun" in error["message"]
    assert "docs/" not in error["message"] and ".md" not in error["message"]
    listed = client.http.get(f"{PREFIX}/projects/{pid}/generations", headers=auth()).json_body["items"]
    assert listed == []


def test_the_same_refusal_is_in_english_without_accept_language(client, env):
    pid = project(client)
    resp = generate(client, pid, prompt="wanita bugil di pantai")
    assert resp.status_code == 400
    error = resp.json_body["error"]
    assert (error["details"]["rule"], error["details"]["field"]) == ("sexual_content", "prompt")
    assert error["message"].startswith("We can't make this avatar") and "not allowed" in error["message"]


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\u202e", "\u2066"])
def test_a_prompt_with_nul_escape_or_a_bidi_override_is_refused_as_names_are(client, env, char):
    pid = project(client)
    resp = generate(client, pid, prompt=f"portrait of a chef{char}")
    assert resp.status_code == 400 and resp.json_body["error"]["code"] == "validation_error"
