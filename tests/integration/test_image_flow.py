"""Display copy and chosen crop over the embedded local stack, as a browser does it: upload a photo
with GPS, download its display copy, choose a crop over HTTP and see the worker re-make the
thumbnail under a new URL within a couple of seconds."""
from __future__ import annotations

import io
import time
import uuid

import pytest
import requests

from tests.integration.test_upload_flow import api, ask_upload, avatar, new_project, wait_for
from tests.support import images as img
from tests.support.uploads import browser_post, poll

CROPPED_WITHIN = 2.0


@pytest.fixture
def user(local_stack):
    name = f"img-{uuid.uuid4().hex[:10]}"
    return {"id": name, "headers": {"Authorization": f"Bearer {local_stack.token(name)}"}}


def pil(data):
    from PIL import Image

    return Image.open(io.BytesIO(data))


def test_display_copy_and_crop_over_http(local_stack, user):
    pid = new_project(local_stack, user)
    data = img.hostile_jpeg(600, 900)
    created = ask_upload(local_stack, user, pid, data, name="Portrait")
    posted = browser_post(created["upload"]["url"], created["upload"]["fields"], data, filename="IMG_0002.JPG")
    assert posted.status_code in (200, 201, 204), posted.text
    ready = wait_for(local_stack, user, created["avatar"]["id"], timeout=5.0)
    assert ready["status"] == "ready", ready

    display = requests.get(ready["displayUrl"], timeout=10)
    assert display.status_code == 200 and pil(display.content).format == "WEBP"
    assert pil(display.content).size == (600, 900)  # smaller than 1024: never enlarged
    original = requests.get(ready["imageUrl"], timeout=10).content
    assert img.SECRET not in original and pil(original).tobytes() == pil(data).tobytes()

    started = time.monotonic()
    resp = api(local_stack, user, "PUT", f"/avatars/{ready['id']}", json={"crop": {"x": 0, "y": 600, "size": 300}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["crop"] == {"x": 0, "y": 600, "size": 300}
    old_path = ready["thumbnailUrl"].split("?")[0]
    recropped = poll(lambda: avatar(local_stack, user, ready["id"]),
                     lambda a: a["thumbnailUrl"].split("?")[0] != old_path, timeout=5.0)
    latency = time.monotonic() - started
    print(f"\ncrop → new thumbnail: {latency * 1000:.0f} ms")
    assert latency < CROPPED_WITHIN, f"thumbnail re-made after {latency:.2f}s"
    thumb = pil(requests.get(recropped["thumbnailUrl"], timeout=10).content).convert("RGB")
    assert thumb.size == (300, 300)
    assert all(abs(a - b) < 40 for a, b in zip(thumb.getpixel((150, 150)), img.BOTTOM))
    # the old file goes once the new key is recorded (the worker deletes it after its write): wait on it
    gone = poll(lambda: requests.get(ready["thumbnailUrl"], timeout=10).status_code, lambda s: s in (403, 404),
                timeout=5.0)
    assert gone in (403, 404)

    outside = api(local_stack, user, "PUT", f"/avatars/{ready['id']}", json={"crop": {"x": 500, "y": 0, "size": 200}})
    assert outside.status_code == 400 and "600x900" in outside.json()["error"]["message"]
