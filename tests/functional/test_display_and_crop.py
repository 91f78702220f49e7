"""Display copy and chosen crop over moto: what the upload and generation workers store, what the
avatar JSON offers, and what deleting an avatar removes."""
from __future__ import annotations

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
    assert f"display/alice/{avatar['id']}.webp" in avatar["displayUrl"]
    display = pil(read_object(aws, f"display/alice/{avatar['id']}.webp"))
    assert display.format == "WEBP" and display.size == (avatar["width"], avatar["height"])  # 512x640: not enlarged
