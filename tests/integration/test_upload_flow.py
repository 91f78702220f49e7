"""The upload flow over the embedded local stack, as a browser does it: ask the API for an upload,
POST the file to S3 (ministack enforces the policy), let the S3 event reach the worker through the
queue, poll the avatar, download its presigned URLs."""
from __future__ import annotations

import io
import time
import uuid

import pytest
import requests

from tests.support import images as img
from tests.support.uploads import browser_post, poll, upload_spec

MB = 1024 * 1024
READY_WITHIN = 2.0


@pytest.fixture
def user(local_stack):
    """A fresh user per test: the stack is shared by the session."""
    name = f"up-{uuid.uuid4().hex[:10]}"
    return {"id": name, "headers": {"Authorization": f"Bearer {local_stack.token(name)}"}}


def api(local_stack, user, method, path, **kwargs):
    return requests.request(method, local_stack.api(path), headers=user["headers"], timeout=10, **kwargs)


def new_project(local_stack, user):
    resp = api(local_stack, user, "POST", "/projects", json={"name": "Uploads"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def ask_upload(local_stack, user, project_id, data, **fields):
    resp = api(local_stack, user, "POST", f"/projects/{project_id}/avatars/upload", json=upload_spec(data, **fields))
    assert resp.status_code == 201, resp.text
    return resp.json()


def avatar(local_stack, user, avatar_id):
    resp = api(local_stack, user, "GET", f"/avatars/{avatar_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_for(local_stack, user, avatar_id, statuses=("ready", "rejected"), timeout=10.0):
    return poll(lambda: avatar(local_stack, user, avatar_id), lambda a: a["status"] in statuses, timeout=timeout)


def pil(data):
    from PIL import Image

    return Image.open(io.BytesIO(data))


def test_browser_upload_is_ready_within_2s_and_its_urls_download(local_stack, user):
    pid = new_project(local_stack, user)
    data = img.jpeg(2400, 1600)
    created = ask_upload(local_stack, user, pid, data, name="Browser")
    ticket = created["upload"]

    started = time.monotonic()
    posted = browser_post(ticket["url"], ticket["fields"], data, filename="IMG_0001.JPG")
    assert posted.status_code in (200, 201, 204), posted.text
    result = wait_for(local_stack, user, created["avatar"]["id"], statuses=("ready", "rejected"), timeout=5.0)
    latency = time.monotonic() - started
    print(f"\nupload → ready: {latency * 1000:.0f} ms (POST to S3 included; 2400x1600 JPEG, "
          f"{len(data) / 1024:.0f} KiB)")
    assert result["status"] == "ready", result
    assert latency < READY_WITHIN, f"ready after {latency:.2f}s"
    assert (result["width"], result["height"], result["format"]) == (2400, 1600, "JPEG")

    thumb = requests.get(result["thumbnailUrl"], timeout=10)
    assert thumb.status_code == 200
    assert pil(thumb.content).size == (300, 300)
    full = requests.get(result["imageUrl"], timeout=10)
    assert full.status_code == 200 and pil(full.content).size == (2400, 1600)
    # The URLs come from chalicelib.aws.presign, not botocore: the endpoint checks the signature.
    url, signature = result["thumbnailUrl"].rsplit("X-Amz-Signature=", 1)
    forged = url + "X-Amz-Signature=" + ("0" if signature[0] != "0" else "1") + signature[1:]
    assert requests.get(forged, timeout=10).status_code == 403

    listed = api(local_stack, user, "GET", f"/projects/{pid}/avatars").json()["items"]
    assert [a["id"] for a in listed] == [result["id"]]
    assert api(local_stack, user, "GET", f"/projects/{pid}").json()["avatarCount"] == 1


def test_s3_refuses_files_outside_the_policy(local_stack, user):
    pid = new_project(local_stack, user)
    created = ask_upload(local_stack, user, pid, None, size=10 * MB)
    ticket, fields = created["upload"], created["upload"]["fields"]

    too_big = browser_post(ticket["url"], fields, b"\xff" * (10 * MB + 1))
    assert too_big.status_code == 400 and "EntityTooLarge" in too_big.text

    wrong_type = browser_post(ticket["url"], {**fields, "Content-Type": "text/html"}, img.jpeg(64, 64),
                              content_type="text/html")
    assert wrong_type.status_code == 403, wrong_type.text

    # The key is pinned: the same policy cannot write under another user's prefix.
    other_key = f"uploads/someone-else/{created['avatar']['id']}"
    foreign = browser_post(ticket["url"], {**fields, "key": other_key}, img.jpeg(64, 64))
    assert foreign.status_code == 403, foreign.text

    s3 = local_stack.client("s3")  # the stack's own keys: an honest policy, only expired
    expired = s3.generate_presigned_post(
        Bucket=local_stack.outputs["UploadBucket"], Key=fields["key"], Fields={"Content-Type": "image/jpeg"},
        Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1, 10 * MB]], ExpiresIn=-60)
    late = browser_post(expired["url"], expired["fields"], img.jpeg(64, 64))
    assert late.status_code == 403, late.text

    # Nothing reached the bucket, so the avatar is still waiting for its file.
    time.sleep(0.3)
    assert avatar(local_stack, user, created["avatar"]["id"])["status"] == "uploading"


@pytest.mark.parametrize("kind, make, content_type", [
    ("text named .png", img.text_as_png, "image/png"),
    ("truncated JPEG", img.truncated_jpeg, "image/jpeg"),
    ("decompression bomb", img.png_bomb, "image/png"),
])
def test_invalid_files_end_rejected_and_the_service_keeps_working(local_stack, user, kind, make, content_type):
    pid = new_project(local_stack, user)
    data = make()
    created = ask_upload(local_stack, user, pid, data, contentType=content_type, name=kind)
    ticket = created["upload"]
    assert browser_post(ticket["url"], ticket["fields"], data, filename="x.png").status_code in (200, 201, 204)
    result = wait_for(local_stack, user, created["avatar"]["id"])
    assert result["status"] == "rejected", (kind, result)
    assert result["statusReason"], kind
    print(f"\n{kind}: {result['statusReason']}")

    good = img.jpeg(500, 400)
    nxt = ask_upload(local_stack, user, pid, good)
    assert browser_post(nxt["upload"]["url"], nxt["upload"]["fields"], good).status_code in (200, 201, 204)
    assert wait_for(local_stack, user, nxt["avatar"]["id"])["status"] == "ready"
    assert api(local_stack, user, "GET", f"/projects/{pid}").json()["avatarCount"] == 1


def test_batch_upload_of_several_files(local_stack, user):
    pid = new_project(local_stack, user)
    files = [img.jpeg(320, 240), img.png(200, 200), img.webp(300, 500)]
    types = ["image/jpeg", "image/png", "image/webp"]
    resp = api(local_stack, user, "POST", f"/projects/{pid}/avatars/uploads",
               json={"files": [upload_spec(d, contentType=t, name=f"f{i}")
                               for i, (d, t) in enumerate(zip(files, types))]})
    assert resp.status_code == 201, resp.text
    items = resp.json()["items"]
    for item, data in zip(items, files):
        assert browser_post(item["upload"]["url"], item["upload"]["fields"], data).status_code in (200, 201, 204)
    results = [wait_for(local_stack, user, item["avatar"]["id"]) for item in items]
    assert [(r["status"], r["format"]) for r in results] == [("ready", "JPEG"), ("ready", "PNG"), ("ready", "WEBP")]
    assert api(local_stack, user, "GET", f"/projects/{pid}").json()["avatarCount"] == 3
