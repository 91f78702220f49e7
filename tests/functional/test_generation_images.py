"""Issue 19 over moto: the content policy on the generation routes, several images per job (ids, seeds,
quotas per image, partial failures), the safety check on outputs (the real InferenceClient against the
fake FLUX server's classifier), error codes and timings."""
from __future__ import annotations

import json

import boto3
import pytest

from chalicelib import dependencies
from chalicelib.generation.spec import avatar_id_for
from chalicelib.ids import is_valid_id
from tests.functional.conftest import PREFIX, auth, body
from tests.functional.test_presets import PRESETS, seeded  # noqa: F401 — fixture
from tests.functional.test_generation import (  # noqa: F401 — fixtures
    avatars_of,
    env,
    flux,
    generate,
    get_gen,
    project,
    run_worker,
    stats,
)
from tests.support.fake_flux import FakeFlux


def stored_images(user="alice") -> list[str]:
    bucket = dependencies.get_deps().settings.upload_bucket
    s3 = boto3.client("s3", region_name="us-east-1")
    return [o["Key"] for prefix in ("images/", "thumbs/")
            for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}{user}/").get("Contents", [])]


def generations_of(client, pid):
    return client.http.get(f"{PREFIX}/projects/{pid}/generations", headers=auth()).json_body["items"]


# ---- the content policy ---------------------------------------------------------------------------

def test_a_refused_prompt_is_a_400_naming_the_rule_and_nothing_is_queued_or_counted(client, env):
    pid = project(client)
    resp = generate(client, pid, prompt="n4k3d woman on a beach")
    assert resp.status_code == 400
    error = resp.json_body["error"]
    assert error["code"] == "prompt_rejected"
    assert error["details"]["rule"] == "sexual_content" and error["details"]["field"] == "prompt"
    assert "sexual content" in error["message"] and "docs/" not in error["message"]  # a sentence, no repo path
    assert generations_of(client, pid) == [] and run_worker() == 0
    env(GENERATION_DAILY_LIMIT="1")
    assert generate(client, pid).status_code == 202  # the refused request used no quota


def test_the_policy_reads_persona_fields_too(client, env):
    pid = project(client)
    resp = generate(client, pid, personaBackground="a 15 year old", prompt="seductive pose in lingerie")
    assert resp.status_code == 400 and resp.json_body["error"]["details"]["rule"] == "minors"


def test_an_allowed_prompt_that_naive_filters_refuse_is_generated(client, env):
    pid = project(client)
    resp = generate(client, pid, prompt="analyst from Scunthorpe in a cocktail dress")
    assert resp.status_code == 202, resp.body


def test_preset_generation_and_variations_are_checked_before_anything_is_queued(client, env, seeded):
    pid = project(client)
    resp = client.http.post(f"{PREFIX}/presets/{PRESETS['presets'][0]['id']}/generate", headers=auth(),
                            body=body({"projectId": pid, "prompt": "gory decapitated victim"}))
    assert resp.status_code == 400 and resp.json_body["error"]["details"]["rule"] == "graphic_violence"

    gen = generate(client, pid).json_body
    run_worker()
    avatar_id = get_gen(client, gen["id"])["avatarId"]
    resp = client.http.post(f"{PREFIX}/avatars/{avatar_id}/variations", headers=auth(),
                            body=body({"count": 2, "styles": ["casual", "swastika armband"]}))
    assert resp.status_code == 400 and resp.json_body["error"]["details"]["rule"] == "hate_symbols"
    assert [g["id"] for g in generations_of(client, pid)] == [gen["id"]]  # not even the first variation


# ---- several images per job -------------------------------------------------------------------

def test_one_job_makes_n_avatars_with_consecutive_seeds_and_derived_ids(client, env):
    pid = project(client)
    gen = generate(client, pid, numImages=3, seed=100).json_body
    assert gen["numImages"] == 3 and gen["avatars"] == [] and gen["avatar"] is None
    assert run_worker() == 1
    done = get_gen(client, gen["id"])
    assert (done["status"], done["imagesMade"], done["imagesFailed"], done["errorCode"]) == ("completed", 3, 0, None)
    assert [a["seed"] for a in done["avatars"]] == [100, 101, 102]
    assert [a["id"] for a in done["avatars"]] == done["avatarIds"] == [avatar_id_for(gen["id"], i) for i in range(3)]
    assert done["avatar"] == done["avatars"][0] and done["avatarId"] == done["avatars"][0]["id"]
    assert all(is_valid_id(a, "ava") for a in done["avatarIds"]) and len(set(done["avatarIds"])) == 3
    assert [a["name"] for a in done["avatars"]] == ["Sarah (1)", "Sarah (2)", "Sarah (3)"]
    # Each avatar says which image of the batch it is (the page shows a batch in that order).
    assert [a["imageIndex"] for a in done["avatars"]] == [0, 1, 2]
    assert sorted(a["imageIndex"] for a in avatars_of(client, pid)) == [0, 1, 2]
    assert sorted(a["id"] for a in avatars_of(client, pid)) == sorted(done["avatarIds"])
    s = stats(client)
    assert (s["totalAvatars"], s["bySourceType"]["text_to_image"], s["activeGenerations"]) == (3, 3, 0)
    assert client.http.get(f"{PREFIX}/projects/{pid}", headers=auth()).json_body["avatarCount"] == 3
    assert len(stored_images()) == 6


def test_a_redelivered_job_of_several_images_makes_no_extra_avatars(client, env, aws):
    pid = project(client)
    gen = generate(client, pid, numImages=2).json_body
    message = boto3.client("sqs", region_name="us-east-1").receive_message(
        QueueUrl=aws["GenerationQueueUrl"], MaxNumberOfMessages=1)["Messages"][0]
    boto3.client("sqs", region_name="us-east-1").change_message_visibility(
        QueueUrl=aws["GenerationQueueUrl"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    run_worker()
    boto3.client("sqs", region_name="us-east-1").send_message(QueueUrl=aws["GenerationQueueUrl"],
                                                             MessageBody=message["Body"])
    run_worker()
    assert len(avatars_of(client, pid)) == 2 and stats(client)["totalAvatars"] == 2
    assert get_gen(client, gen["id"])["attempts"] == 1


@pytest.mark.parametrize("value", [0, 5, -1, "2", 2.5, None])
def test_num_images_outside_1_to_4_is_a_400(client, env, value):
    pid = project(client)
    resp = generate(client, pid, numImages=value)
    assert resp.status_code == 400 and resp.json_body["error"]["code"] == "validation_error"
    assert generations_of(client, pid) == []


def test_the_daily_quota_counts_images_and_the_active_cap_counts_jobs(client, env):
    env(GENERATION_DAILY_LIMIT="5", GENERATION_ACTIVE_LIMIT="2")
    pid = project(client)
    assert generate(client, pid, numImages=4).status_code == 202
    over = generate(client, pid, numImages=2)
    assert over.status_code == 429 and over.json_body["error"]["details"]["kind"] == "daily"
    assert generate(client, pid, numImages=1).status_code == 202  # 5 of 5 images; 2 of 2 jobs
    run_worker()
    assert stats(client)["totalAvatars"] == 5
    last = generate(client, pid, numImages=1)
    assert last.status_code == 429 and last.json_body["error"]["details"]["kind"] == "daily"


def test_more_images_than_the_whole_daily_limit_is_a_429_that_says_so(client, env):
    env(GENERATION_DAILY_LIMIT="3")
    pid = project(client)
    resp = generate(client, pid, numImages=4)
    assert resp.status_code == 429 and resp.json_body["error"]["details"] == {"limit": 3, "kind": "daily", "images": 4}


def test_a_job_the_provider_refused_gives_its_images_back_and_a_retry_charges_them_again(client, flux, env):
    flux.script = ["400", "400", "ok"]
    env(GENERATION_DAILY_LIMIT="4")
    pid = project(client)
    gen = generate(client, pid, numImages=2).json_body
    run_worker()
    assert get_gen(client, gen["id"])["status"] == "failed"
    assert stats(client)["generationsToday"] == 0  # refused by the provider: not the user's doing
    assert client.http.post(f"{PREFIX}/generations/{gen['id']}/retry", headers=auth()).status_code == 202
    again = client.http.post(f"{PREFIX}/generations/{gen['id']}/retry", headers=auth())
    assert again.status_code == 409  # pending now
    assert generate(client, pid, numImages=3).status_code == 429  # 2 charged again by the retry, 3 more asked
    run_worker()
    assert get_gen(client, gen["id"])["status"] == "completed"
    assert generate(client, pid, numImages=2).status_code == 202
    blocked = generate(client, pid, numImages=1)
    assert blocked.status_code == 429 and blocked.json_body["error"]["details"]["kind"] == "daily"


def test_variations_make_num_images_each(client, env):
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    source = get_gen(client, gen["id"])["avatarId"]
    resp = client.http.post(f"{PREFIX}/avatars/{source}/variations", headers=auth(),
                            body=body({"count": 2, "numImages": 2}))
    assert resp.status_code == 202 and [g["numImages"] for g in resp.json_body["items"]] == [2, 2]
    run_worker()
    assert len(avatars_of(client, pid)) == 1 + 4


# ---- partial failures across several images (real InferenceClient, fake FLUX) ------------------------

def test_images_that_fail_for_good_are_counted_and_the_others_kept(client, flux):
    flux.script = ["ok", "400", "garbage", "unsafe-ok"]
    pid = project(client)
    gen = generate(client, pid, numImages=4, seed=7).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["imagesMade"], done["imagesFailed"], done["attempts"]) == ("completed", 1, 3, 1)
    assert [(f["index"], f["code"]) for f in done["failures"]] == \
        [(1, "provider_refused"), (2, "unusable_image"), (3, "unsafe_output")]
    assert [(i["index"], i["status"], i["errorCode"]) for i in done["images"]] == \
        [(0, "done", None), (1, "failed", "provider_refused"), (2, "failed", "unusable_image"),
         (3, "failed", "unsafe_output")]
    assert done["images"][0]["avatarId"] == done["avatarIds"][0]
    assert done["errorCode"] == "provider_refused" and done["errorMessage"].startswith("3 of 4 images failed")
    assert [a["seed"] for a in done["avatars"]] == [7]
    assert [r["json"]["parameters"]["seed"] for r in flux.requests] == [7, 8, 9, 10]
    assert len(stored_images()) == 2  # one image and its thumbnail: the unsafe one was never stored
    s = stats(client)
    assert (s["totalAvatars"], s["activeGenerations"]) == (1, 0)


def test_a_transient_failure_of_one_image_is_retried_and_the_others_go_on(client, flux):
    """Issue 25 item 5: a 503 once, on the third call of a 4-image job: image 4 is still made, and
    image 3 is tried again on the next attempt; no image is asked for twice once it is made."""
    flux.script = ["ok", "ok", "503", "ok"]
    pid = project(client)
    gen = generate(client, pid, numImages=4, seed=20).json_body
    assert [i["status"] for i in gen["images"]] == ["pending"] * 4
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["imagesMade"], done["imagesFailed"], done["attempts"]) == ("completed", 4, 0, 2)
    assert done["failures"] == [] and done["errorCode"] is None
    assert [r["json"]["parameters"]["seed"] for r in flux.requests] == [20, 21, 22, 23, 22]
    assert [a["seed"] for a in done["avatars"]] == [20, 21, 22, 23]


def test_a_transient_failure_that_outlasts_the_attempts_keeps_what_was_made_and_gives_the_rest_back(client, flux, env):
    flux.script = ["ok", "503"]
    env(GENERATION_DAILY_LIMIT="10")
    pid = project(client)
    gen = generate(client, pid, numImages=3, seed=40).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["imagesMade"], done["imagesFailed"], done["attempts"]) == ("completed", 1, 2, 3)
    assert {f["code"] for f in done["failures"]} == {"provider_unavailable"}
    assert [r["json"]["parameters"]["seed"] for r in flux.requests] == [40, 41, 42, 41, 42, 41, 42]
    assert stats(client)["generationsToday"] == 1  # only the image made still counts


def test_a_transient_failure_before_any_image_retries_the_whole_job(client, flux):
    flux.script = ["503", "ok"]
    pid = project(client)
    gen = generate(client, pid, numImages=2).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["imagesMade"], done["attempts"], done["errorCode"]) == ("completed", 2, 2, None)


def test_when_every_image_fails_the_job_fails_with_the_first_code(client, flux):
    flux.script = ["400"]
    pid = project(client)
    gen = generate(client, pid, numImages=2).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["errorCode"], done["imagesMade"], done["imagesFailed"]) == \
        ("failed", "provider_refused", 0, 2)
    assert done["avatars"] == [] and avatars_of(client, pid) == [] and stored_images() == []
    assert stats(client)["activeGenerations"] == 0


# ---- the safety check on outputs -------------------------------------------------------------------

def test_an_unsafe_single_image_fails_the_job_and_is_never_stored(client, flux):
    flux.script = ["unsafe-ok"]
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["errorCode"], done["safety"]) == ("failed", "unsafe_output", "checked")
    assert "withheld" in done["errorMessage"]
    assert stored_images() == [] and avatars_of(client, pid) == []


def test_the_classifier_gets_the_image_as_the_real_client_sends_it(client, flux):
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["safety"], done["provider"]) == ("completed", "checked", "hf-endpoint")
    assert done["model"] == "XLabs-AI/flux-RealismLora"  # what the dedicated endpoint serves
    [call] = flux.safety_requests
    assert call["path"] == "/models/nsfw-classifier" and call["authorization"] == "Bearer hf_test_token"
    assert call["png"] and call["bytes"] > 100  # the raw image as the body (no JSON wrapper without parameters)


def test_the_threshold_is_a_setting(client, flux, env):
    env(SAFETY_THRESHOLD="0.99")  # the fake scores the red image 0.97
    flux.script = ["unsafe-ok"]
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    assert get_gen(client, gen["id"])["status"] == "completed"


def test_classifier_429_and_503_are_retried_like_provider_calls(client, flux):
    flux.safety_script = ["429", "503", "auto"]
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["attempts"], done["safety"]) == ("completed", 3, "checked")
    assert [r["answer"] for r in flux.safety_requests] == ["429", "503", "auto"]


def test_a_classifier_that_keeps_failing_fails_the_job_closed(client, flux):
    flux.safety_script = ["503"]
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker(rounds=10)
    done = get_gen(client, gen["id"])
    assert (done["status"], done["errorCode"]) == ("failed", "safety_unavailable")
    assert stored_images() == []


def test_offline_placeholders_without_a_classifier_are_marked_unchecked(client, env):
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["safety"], done["provider"], done["model"]) == \
        ("completed", "unchecked", "offline", "offline-placeholder")


def test_production_without_a_classifier_publishes_nothing(client, env, monkeypatch):
    with FakeFlux(["ok"]) as fake:
        monkeypatch.delenv("HF_TOKEN", raising=False)
        env(STAGE="prod", GENERATION_PROVIDER="hf", FLUX_ENDPOINT_URL=fake.url)
        pid = project(client)
        gen = generate(client, pid).json_body
        run_worker()
        done = get_gen(client, gen["id"])
        assert (done["status"], done["errorCode"]) == ("failed", "safety_unavailable")
        assert fake.requests == [] and stored_images() == []  # not even a provider call


# ---- error codes and timings --------------------------------------------------------------------

def test_every_failure_has_a_stable_error_code(client, flux):
    flux.script = ["503"]
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    assert get_gen(client, gen["id"])["errorCode"] == "provider_unavailable"


def test_timings_and_metrics_are_reported(client, env):
    pid = project(client)
    gen = generate(client, pid).json_body
    pending = get_gen(client, gen["id"])
    assert pending["queuedAt"] == pending["createdAt"] and pending["queuePosition"] >= 1
    assert pending["metrics"] == {"queueMs": None, "providerMs": None, "totalMs": None, "attempts": 0}
    run_worker()
    done = get_gen(client, gen["id"])
    m = done["metrics"]
    assert done["queuePosition"] is None and m["attempts"] == 1
    assert 0 <= m["queueMs"] <= m["totalMs"] and m["providerMs"] >= 0
    assert done["startedAt"] <= done["completedAt"]


def test_the_worker_emits_job_metrics(client, env, capsys):
    pid = project(client)
    generate(client, pid, numImages=2)
    run_worker()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    [main] = [json.loads(line) for line in lines if "JobDuration" in line]
    assert main["ImagesGenerated"] == [2.0] and main["JobDuration"][0] >= 0
