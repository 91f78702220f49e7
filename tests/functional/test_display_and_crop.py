"""Display copy and chosen crop over moto: what the upload and generation workers store, what the
avatar JSON offers, and what deleting an avatar removes."""
from __future__ import annotations

from chalicelib.avatars import service as avatars

import io

import pytest
from PIL import Image

from tests.functional.conftest import PREFIX, auth
from tests.functional.test_uploads import create_project, exists, read_object, upload
from tests.support import images as img


def pil(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_upload_stores_a_display_copy_and_returns_its_url(client, aws):
    pid = create_project(client)
    avatar = upload(client, aws, pid, img.jpeg(2400, 1600, exif_orientation=6, gps=True))
    assert avatar["status"] == "ready"
    assert f"display/alice/{avatar['id']}.webp" in avatar["displayUrl"] and "X-Amz-Signature=" in avatar["displayUrl"]
    display = pil(read_object(aws, f"display/alice/{avatar['id']}.webp"))
    assert (display.format, display.size) == ("WEBP", (683, 1024))
    assert not display.getexif() and "xmp" not in display.info
    img.assert_upright(display)


def test_a_hostile_upload_is_stored_with_its_pixels_and_without_its_metadata(client, aws):
    pid = create_project(client)
    data = img.hostile_jpeg(640, 480)
    avatar = upload(client, aws, pid, data)
    assert avatar["status"] == "ready"
    for key in (f"images/alice/{avatar['id']}.jpg", f"thumbs/alice/{avatar['id']}.jpg",
                f"display/alice/{avatar['id']}.webp"):
        stored = read_object(aws, key)
        assert img.SECRET not in stored and b"Exif" not in stored and b"<html" not in stored, key
    original, stored = pil(data), pil(read_object(aws, f"images/alice/{avatar['id']}.jpg"))
    assert stored.tobytes() == original.tobytes()


def test_a_malformed_upload_is_rejected_with_the_reason(client, aws):
    pid = create_project(client)
    data = img.with_jpeg_segments(img.jpeg(200, 200), b"\xff\xe1\xff\xf0Exif\x00\x00")
    avatar = upload(client, aws, pid, data[:400])
    assert avatar["status"] == "rejected" and "malformed" in avatar["statusReason"]
    assert avatar["displayUrl"] is None
    assert not exists(aws, f"display/alice/{avatar['id']}")


def test_deleting_an_avatar_deletes_its_display_copy(client, aws):
    pid = create_project(client)
    avatar = upload(client, aws, pid, img.png(300, 200))
    key = f"display/alice/{avatar['id']}.webp"
    assert exists(aws, key)
    resp = client.http.delete(f"{PREFIX}/avatars/{avatar['id']}", headers=auth())
    assert resp.status_code in (200, 204), resp.body
    assert not exists(aws, key)


@pytest.fixture
def offline(aws, monkeypatch):
    from chalicelib import dependencies

    monkeypatch.setenv("GENERATION_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("GENERATION_PROVIDER", "offline")
    dependencies.reset()


def test_a_generated_avatar_gets_a_display_copy(client, aws, offline):
    from tests.functional.test_generation import generate, get_gen, project, run_worker

    pid = project(client)
    gen = generate(client, pid).json_body
    assert run_worker() == 1
    avatar = get_gen(client, gen["id"])["avatar"]
    # a generated avatar's files carry the token of the run that made them
    key = next(k for k in avatars.files_of(avatars.get_avatar("alice", avatar["id"])) if k.startswith("display/"))
    assert key.startswith(f"display/alice/{avatar['id']}.") and key.endswith(".webp") and key in avatar["displayUrl"]
    display = pil(read_object(aws, key))
    assert display.format == "WEBP" and display.size == (avatar["width"], avatar["height"])  # 512x640: not enlarged


# ---- chosen crop -------------------------------------------------------------------------------------

def put_avatar(client, avatar_id, payload, user="alice"):
    import json

    return client.http.put(f"{PREFIX}/avatars/{avatar_id}", headers={**auth(user), "Content-Type": "application/json"},
                           body=json.dumps(payload))


def get(client, avatar_id, user="alice"):
    return client.http.get(f"{PREFIX}/avatars/{avatar_id}", headers=auth(user)).json_body


def run_image_worker(client, aws) -> int:
    from tests.support.uploads import drain_now

    return drain_now(client, aws["UploadQueueUrl"], "upload_worker")


def thumb_key(url: str) -> str:
    """The object key a presigned thumbnail URL points at."""
    from urllib.parse import urlparse

    path = urlparse(url).path
    return path[path.index("thumbs/"):]


def middle_colour(data: bytes) -> tuple:
    return pil(data).convert("RGB").getpixel((150, 150))


def is_colour(pixel, colour) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour))


@pytest.fixture
def tall(client, aws):
    """A ready 400x600 upload: red upper half, blue lower half."""
    pid = create_project(client)
    return upload(client, aws, pid, img.jpeg(400, 600))


def test_a_chosen_crop_is_returned_and_its_thumbnail_made_by_the_worker_under_a_new_url(client, aws, tall):
    before = tall["thumbnailUrl"]
    resp = put_avatar(client, tall["id"], {"crop": {"x": 0, "y": 500, "size": 100}})
    assert resp.status_code == 200, resp.body
    assert resp.json_body["crop"] == {"x": 0, "y": 500, "size": 100}
    assert run_image_worker(client, aws) == 1
    after = get(client, tall["id"])
    assert after["crop"] == {"x": 0, "y": 500, "size": 100}
    new_key = thumb_key(after["thumbnailUrl"])
    assert new_key != thumb_key(before) and new_key == f"thumbs/alice/{tall['id']}-c1.jpg"
    thumb = read_object(aws, new_key)
    assert pil(thumb).size == (300, 300) and is_colour(middle_colour(thumb), img.BOTTOM)
    assert not exists(aws, thumb_key(before)), "the old thumbnail is deleted once the avatar points at the new one"


def test_crop_null_goes_back_to_the_centre_with_yet_another_url(client, aws, tall):
    assert put_avatar(client, tall["id"], {"crop": {"x": 0, "y": 0, "size": 100}}).status_code == 200
    run_image_worker(client, aws)
    cropped = get(client, tall["id"])
    assert is_colour(middle_colour(read_object(aws, thumb_key(cropped["thumbnailUrl"]))), img.TOP)
    resp = put_avatar(client, tall["id"], {"crop": None})
    assert resp.status_code == 200 and resp.json_body["crop"] is None
    run_image_worker(client, aws)
    reset = get(client, tall["id"])
    key = thumb_key(reset["thumbnailUrl"])
    assert key == f"thumbs/alice/{tall['id']}-c2.jpg"
    img.assert_upright(pil(read_object(aws, key)))  # the centre square: red above, blue below
    assert not exists(aws, thumb_key(cropped["thumbnailUrl"]))


@pytest.mark.parametrize("crop", [{"x": 350, "y": 0, "size": 100}, {"x": 0, "y": 0, "size": 401},
                                  {"x": 0, "y": 550, "size": 51}])
def test_a_crop_outside_the_image_is_400_stating_its_bounds(client, aws, tall, crop):
    resp = put_avatar(client, tall["id"], {"crop": crop})
    assert resp.status_code == 400
    error = resp.json_body["error"]
    assert "400x600" in error["message"]
    assert (error["details"]["width"], error["details"]["height"]) == (400, 600)
    assert get(client, tall["id"])["crop"] is None


@pytest.mark.parametrize("crop", [{"x": -1, "y": 0, "size": 10}, {"x": 0, "y": 0}, {"x": 0, "y": 0, "size": 0},
                                  {"x": 0, "y": 0, "size": 10, "width": 20}, {"x": "0", "y": 0, "size": 10},
                                  [0, 0, 10]])
def test_a_malformed_crop_is_400(client, aws, tall, crop):
    assert put_avatar(client, tall["id"], {"crop": crop}).status_code == 400


def test_another_users_avatar_cannot_be_cropped(client, aws, tall):
    assert put_avatar(client, tall["id"], {"crop": {"x": 0, "y": 0, "size": 10}}, user="bob").status_code == 404
    assert get(client, tall["id"])["crop"] is None


def test_a_crop_before_the_image_is_ready_is_409(client, aws):
    from tests.functional.test_uploads import request_upload

    pid = create_project(client)
    created = request_upload(client, pid)
    resp = put_avatar(client, created["avatar"]["id"], {"crop": {"x": 0, "y": 0, "size": 10}})
    assert resp.status_code == 409


def test_a_repeated_request_or_unchanged_crop_changes_nothing_twice(client, aws, tall):
    crop = {"crop": {"x": 100, "y": 100, "size": 200}}
    assert put_avatar(client, tall["id"], crop).status_code == 200
    assert put_avatar(client, tall["id"], crop).status_code == 200  # same crop: no new version
    assert run_image_worker(client, aws) == 2  # two requests, one thumbnail
    first = get(client, tall["id"])
    assert thumb_key(first["thumbnailUrl"]) == f"thumbs/alice/{tall['id']}-c1.jpg"
    from chalicelib.avatars.crops import remake_thumbnail
    from chalicelib.dependencies import get_deps

    deps = get_deps()
    assert remake_thumbnail(deps.storage, deps.settings, "alice", tall["id"]) == "skipped: thumbnail is current"
    assert exists(aws, f"thumbs/alice/{tall['id']}-c1.jpg")


def test_a_thumbnail_request_for_a_superseded_crop_leaves_no_file(client, aws, tall):
    from chalicelib.avatars.crops import remake_thumbnail
    from chalicelib.dependencies import get_deps
    from chalicelib.aws.models import META, AvatarModel

    deps = get_deps()
    assert put_avatar(client, tall["id"], {"crop": {"x": 0, "y": 0, "size": 100}}).status_code == 200
    # The worker read version 1; the user changes the crop again before it writes.
    avatar = AvatarModel.get(f"U#alice#A#{tall['id']}", META)
    original_update = AvatarModel.update

    def user_changes_crop_first(self, *args, **kwargs):
        AvatarModel.update = original_update
        put_avatar(client, tall["id"], {"crop": {"x": 0, "y": 300, "size": 100}})
        return original_update(self, *args, **kwargs)

    AvatarModel.update = user_changes_crop_first
    try:
        assert remake_thumbnail(deps.storage, deps.settings, "alice", tall["id"]) == "skipped: changed meanwhile"
    finally:
        AvatarModel.update = original_update
    assert not exists(aws, f"thumbs/alice/{tall['id']}-c1.jpg")
    assert AvatarModel.get(avatar.pk, META).thumbnail_key == f"thumbs/alice/{tall['id']}.jpg"  # unchanged
    run_image_worker(client, aws)
    final = get(client, tall["id"])
    assert thumb_key(final["thumbnailUrl"]) == f"thumbs/alice/{tall['id']}-c2.jpg"
    assert final["crop"] == {"x": 0, "y": 300, "size": 100}


def test_deleting_a_cropped_avatar_deletes_its_current_thumbnail(client, aws, tall):
    put_avatar(client, tall["id"], {"crop": {"x": 0, "y": 0, "size": 100}})
    run_image_worker(client, aws)
    assert client.http.delete(f"{PREFIX}/avatars/{tall['id']}", headers=auth()).status_code == 204
    assert not exists(aws, f"thumbs/alice/{tall['id']}")
