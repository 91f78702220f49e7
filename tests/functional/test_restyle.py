"""Restyle (image-to-image) over moto: the route, ownership, the offline placeholder, and the real
InferenceClient's image-to-image request against the fake FLUX server."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.functional.conftest import PREFIX, auth, body
from tests.functional.test_generation import (  # noqa: F401 — fixtures
    avatars_of,
    env,
    flux,
    generate,
    get_gen,
    key_in,
    project,
    run_worker,
    s3_object,
    stats,
)


def made_avatar(client) -> tuple[str, dict]:
    pid = project(client)
    gen = generate(client, pid).json_body
    run_worker()
    return pid, get_gen(client, gen["id"])["avatar"]


def restyle(client, avatar_id, user="alice", **fields):
    return client.http.post(f"{PREFIX}/avatars/{avatar_id}/restyle", headers=auth(user),
                            body=body({"prompt": "as an oil painting", **fields}))


def test_offline_restyle_makes_a_new_avatar_that_keeps_persona_and_attributes(client, env):
    pid, source = made_avatar(client)
    resp = restyle(client, source["id"], style="creative", strength=0.8)
    assert resp.status_code == 202, resp.body
    gen = resp.json_body
    assert gen["request"]["sourceType"] == "image_to_image" and gen["request"]["sourceAvatarId"] == source["id"]
    run_worker()
    done = get_gen(client, gen["id"])
    assert done["status"] == "completed", done
    new = done["avatar"]
    assert (new["sourceType"], new["sourceAvatarId"], new["style"]) == ("image_to_image", source["id"], "creative")
    assert (new["personaName"], new["gender"], new["ethnicity"]) == (source["personaName"], source["gender"],
                                                                     source["ethnicity"])
    assert (new["width"], new["height"]) == (source["width"], source["height"])
    image = Image.open(io.BytesIO(s3_object(key_in(new["imageUrl"])))).convert("RGB")
    assert image.getpixel((2, 2)) == (120, 0, 160)  # the visible "RESTYLE PLACEHOLDER" band
    assert len(avatars_of(client, pid)) == 2 and stats(client)["totalAvatars"] == 2
    listed = client.http.get(f"{PREFIX}/projects/{pid}/avatars?sourceType=image_to_image", headers=auth())
    assert [a["id"] for a in listed.json_body["items"]] == [new["id"]]


def test_restyle_sends_the_avatars_image_through_image_to_image(client, flux):
    _, source = made_avatar(client)
    resp = restyle(client, source["id"], strength=0.35, numImages=2, seed=9)
    assert resp.status_code == 202
    run_worker()
    done = get_gen(client, resp.json_body["id"])
    assert (done["status"], done["imagesMade"]) == ("completed", 2)
    first, second = flux.requests[1:]
    assert first["path"] == "/models/flux-realism"  # FLUX_IMAGE_ENDPOINT_URL unset: FLUX_ENDPOINT_URL
    params = first["json"]["parameters"]
    assert params["prompt"] == done["prompt"] and "oil painting" in params["prompt"]
    assert params["strength"] == 0.35 and params["target_size"] == {"width": 512, "height": 640}
    assert (params["seed"], second["json"]["parameters"]["seed"]) == (9, 10)
    assert [a["seed"] for a in done["avatars"]] == [9, 10]
    sent = Image.open(io.BytesIO(base64.b64decode(first["json"]["inputs"])))
    assert sent.size == (512, 640)  # the source avatar's image
    assert [a["sourceType"] for a in done["avatars"]] == ["image_to_image"] * 2
    assert done["model"] == "black-forest-labs/FLUX.1-Kontext-dev" and done["provider"] == "hf-endpoint"


def test_restyle_uses_its_own_endpoint_when_set(client, flux, env):
    _, source = made_avatar(client)
    env(FLUX_IMAGE_ENDPOINT_URL=flux.url.replace("flux-realism", "flux-kontext"))
    restyle(client, source["id"])
    run_worker()
    assert flux.requests[-1]["path"] == "/models/flux-kontext"


def test_another_users_avatar_is_404_and_starts_nothing(client, env):
    _, source = made_avatar(client)
    resp = restyle(client, source["id"], user="bob")
    assert resp.status_code == 404
    assert restyle(client, "ava_01aaaaaaaaaaaaaaaaaaaaaaaa").status_code == 404
    assert run_worker() == 0


@pytest.mark.parametrize("fields", [{"strength": 0.05}, {"strength": 1.5}, {"strength": "0.5"}, {"numImages": 5},
                                    {"prompt": "x"}, {"extra": 1}])
def test_invalid_restyle_requests_are_400(client, env, fields):
    _, source = made_avatar(client)
    resp = restyle(client, source["id"], **fields)
    assert resp.status_code == 400 and resp.json_body["error"]["code"] == "validation_error"


def test_a_restyle_prompt_is_held_to_the_content_policy(client, env):
    _, source = made_avatar(client)
    resp = restyle(client, source["id"], prompt="make her n a k e d")
    assert resp.status_code == 400 and resp.json_body["error"]["code"] == "prompt_rejected"
    assert run_worker() == 0


def test_a_source_deleted_before_the_job_runs_fails_it_coded(client, env):
    _, source = made_avatar(client)
    gen = restyle(client, source["id"]).json_body
    assert client.http.delete(f"{PREFIX}/avatars/{source['id']}", headers=auth()).status_code in (200, 202, 204)
    run_worker()
    done = get_gen(client, gen["id"])
    assert (done["status"], done["errorCode"]) == ("failed", "source_missing")
