"""Object-level authorization, generated from the route table: for every route with an id in its
path, user B calling it with user A's id answers 404 with the error shape, and A's objects are
unchanged afterwards. A new route with an unknown path parameter fails here until it gets a case."""
from __future__ import annotations

import json
import re

import boto3
import pytest

from tests.functional.conftest import PREFIX, auth, body
from tests.support import images as img
from tests.support.generation import deliver

# Shared, read-only catalogue data: every user may read it (and start a generation from it into
# their *own* project — that case is covered by preset_generate below).
SHARED = {"preset_id", "example_id"}
# A share link's token is the capability itself: whoever holds it may view the page, signed in or not
# (tests/functional/test_shares.py covers that route: unknown 404, revoked/expired 410, rate limit).
PUBLIC = {"token"}
KNOWN = {"project_id", "avatar_id", "generation_id", "webhook_id", "attribute", "share_id", "export_id",
         "version"} | SHARED | PUBLIC

# A valid body per write route, so B's 404 is about the id, not a 400 for the body.
BODIES = {
    ("PUT", "/projects/{project_id}"): {"name": "stolen"},
    ("POST", "/projects/{project_id}/avatars/upload"): {"name": "x", "contentType": "image/jpeg", "size": 1000},
    ("POST", "/projects/{project_id}/avatars/uploads"): {"files": [{"name": "x", "contentType": "image/jpeg", "size": 1000}]},
    ("POST", "/projects/{project_id}/avatars/generate"): {"prompt": "a face", "name": "x"},
    ("PUT", "/avatars/{avatar_id}"): {"name": "stolen"},
    ("POST", "/avatars/{avatar_id}/usage"): {"appId": "pose-generator", "appName": "Pose", "action": "use"},
    ("POST", "/avatars/{avatar_id}/variations"): {"count": 1},
    ("PUT", "/webhooks/{webhook_id}"): {"description": "stolen"},
    ("POST", "/avatars/{avatar_id}/restyle"): {"prompt": "as a painting"},
    ("POST", "/avatars/{avatar_id}/shares"): {"expiresIn": 3600, "fields": ["prompt"]},
}

# A valid query per route that needs one, so B's 404 is about the ids, not a 400 for the query.
QUERIES = {
    ("GET", "/projects/{project_id}/compare"): lambda ids: f"?avatars={ids['avatar_id']},{ids['generated_avatar']}",
}


def routes_with_ids() -> list[tuple[str, str, list[str]]]:
    from app import app

    out = []
    for path, methods in app.routes.items():
        params = re.findall(r"{(\w+)}", path)
        if not params:
            continue
        for method in methods:
            out.append((method, path[len(PREFIX):], params))
    return sorted(out)


@pytest.fixture
def world(client, aws, monkeypatch):
    """Alice's project, a ready uploaded avatar, a completed generation and a pending one."""
    from chalicelib import dependencies

    monkeypatch.setenv("GENERATION_PROVIDER", "offline")
    dependencies.reset()
    pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "A"})).json_body["id"]
    data = img.jpeg(200, 200)
    created = client.http.post(f"{PREFIX}/projects/{pid}/avatars/upload", headers=auth(),
                               body=body({"name": "Face", "contentType": "image/jpeg", "size": len(data)})).json_body
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=aws["UploadBucket"], Key=created["upload"]["fields"]["key"],
                                                           Body=data, ContentType="image/jpeg")
    deliver("upload_worker")
    gen = client.http.post(f"{PREFIX}/projects/{pid}/avatars/generate", headers=auth(),
                           body=body({"prompt": "a face", "name": "G"})).json_body
    deliver("generation_worker")
    pending = client.http.post(f"{PREFIX}/projects/{pid}/avatars/generate", headers=auth(),
                               body=body({"prompt": "another face", "name": "P"})).json_body
    hook = client.http.post(f"{PREFIX}/webhooks", headers=auth(),
                            body=body({"url": "https://93.184.215.14/hook"})).json_body
    share = client.http.post(f"{PREFIX}/avatars/{created['avatar']['id']}/shares", headers=auth(),
                             body=body({})).json_body
    export = client.http.post(f"{PREFIX}/projects/{pid}/export", headers=auth(), body=b"").json_body
    # two versions of the avatar: bob restoring version 1 of it must change nothing
    for name in ("Face v1", "Face v2"):
        assert client.http.put(f"{PREFIX}/avatars/{created['avatar']['id']}", headers=auth(),
                               body=body({"name": name})).status_code == 200
    ids = {"project_id": pid, "avatar_id": created["avatar"]["id"], "generation_id": pending["id"],
           "completed_generation": gen["id"], "generated_avatar": client.http.get(
               f"{PREFIX}/generations/{gen['id']}", headers=auth()).json_body["avatarIds"][0], "webhook_id": hook["id"], "share_id": share["id"],
           "share_token": share["token"], "export_id": export["id"], "version": "1",
           "attribute": "glasses"}  # /avatars/{avatar_id}/suggestions/{attribute}: a valid name, A's avatar
    assert client.http.get(f"{PREFIX}/avatars/{ids['avatar_id']}", headers=auth()).json_body["status"] == "ready"
    return ids


def snapshot(client, ids) -> dict:
    """Alice's view of her objects, without the presigned URLs (they are signed anew each time)."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not k.endswith("Url")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    paths = [f"/projects/{ids['project_id']}", f"/avatars/{ids['avatar_id']}", f"/generations/{ids['generation_id']}",
             f"/generations/{ids['completed_generation']}", f"/avatars/{ids['avatar_id']}/usage-history", "/stats",
             f"/projects/{ids['project_id']}/generations", f"/webhooks/{ids['webhook_id']}",
             f"/webhooks/{ids['webhook_id']}/deliveries", f"/avatars/{ids['avatar_id']}/shares",
             f"/exports/{ids['export_id']}", f"/avatars/{ids['avatar_id']}/versions",
             f"/projects/{ids['project_id']}/compare{QUERIES[('GET', '/projects/{project_id}/compare')](ids)}"]
    return {p: clean(client.http.get(f"{PREFIX}{p}", headers=auth()).json_body) for p in paths}


def test_every_path_parameter_has_a_case():
    unknown = {p for _, _, params in routes_with_ids() for p in params} - KNOWN
    assert not unknown, f"add an authorization case for {unknown} in {__file__}"


def test_other_user_gets_404_on_every_route_with_an_id_and_changes_nothing(client, world):
    before = snapshot(client, world)
    tried = []
    for method, path, params in routes_with_ids():
        if set(params) & (SHARED | PUBLIC):
            continue
        url = PREFIX + path.format(**{p: world[p] for p in params}) + QUERIES.get((method, path), lambda _: "")(world)
        payload = BODIES.get((method, path))
        resp = client.http.request(method, url, headers=auth("bob"), body=body(payload) if payload is not None else b"")
        assert resp.status_code == 404, (method, path, resp.status_code, resp.body)
        assert resp.json_body["error"]["code"] == "not_found" and resp.json_body["error"]["message"]
        tried.append((method, path))
    assert len(tried) >= 15, tried
    assert snapshot(client, world) == before
    assert client.http.get(f"{PREFIX}/s/{world['share_token']}").status_code == 200  # still working


def test_only_the_share_page_is_served_without_the_authorizer():
    from app import app

    public = sorted((method, path) for path, methods in app.routes.items() for method, entry in methods.items()
                    if entry.authorizer is None and not path.endswith(("/health", "/openapi.json")))
    assert public == [("GET", f"{PREFIX}/s/{{token}}")], public


def test_shared_catalogue_routes_never_reach_into_another_users_project(client, world):
    from chalicelib.presets import service as preset_domain
    from chalicelib.dependencies import get_deps
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    preset_domain.seed(json.loads((root / "data/presets.v1.json").read_text()),
                       json.loads((root / "data/persona-examples.v1.json").read_text()), storage=get_deps().storage)
    preset = client.http.get(f"{PREFIX}/presets?limit=1", headers=auth("bob")).json_body["items"][0]
    resp = client.http.post(f"{PREFIX}/presets/{preset['id']}/generate", headers=auth("bob"),
                            body=body({"projectId": world["project_id"]}))
    assert resp.status_code == 404
    listed = client.http.get(f"{PREFIX}/projects/{world['project_id']}/generations", headers=auth()).json_body["items"]
    assert len(listed) == 2  # still only alice's two


def test_lists_and_stats_show_nothing_of_another_user(client, world):
    assert client.http.get(f"{PREFIX}/projects", headers=auth("bob")).json_body["items"] == []
    stats = client.http.get(f"{PREFIX}/stats", headers=auth("bob")).json_body
    assert (stats["totalAvatars"], stats["totalProjects"], stats["activeGenerations"]) == (0, 0, 0)


def test_queue_messages_naming_another_users_objects_change_nothing(client, world, aws):
    deliver("generation_worker")  # alice's own pending job first: only the forged messages remain
    before = snapshot(client, world)
    sqs = boto3.client("sqs", region_name="us-east-1")
    # A usage event claiming bob used alice's avatar; a job for alice's generation under bob's id;
    # an S3 event for alice's avatar under bob's prefix.
    sqs.send_message(QueueUrl=aws["UsageEventsQueueUrl"], MessageBody=json.dumps({
        "eventId": "evt-cross", "userId": "bob", "avatarId": world["avatar_id"], "appId": "pose-generator",
        "appName": "Pose", "action": "use", "occurredAt": "2026-01-01T00:00:00Z"}))
    sqs.send_message(QueueUrl=aws["GenerationQueueUrl"],
                     MessageBody=json.dumps({"userId": "bob", "generationId": world["generation_id"]}))
    sqs.send_message(QueueUrl=aws["UploadQueueUrl"], MessageBody=json.dumps({"Records": [{
        "eventName": "ObjectCreated:Post", "s3": {"bucket": {"name": aws["UploadBucket"]},
                                                  "object": {"key": f"uploads/bob/{world['avatar_id']}", "size": 10}}}]}))
    # A webhook delivery naming alice's webhook under bob's id.
    sqs.send_message(QueueUrl=aws["WebhookQueueUrl"], MessageBody=json.dumps({
        "v": 1, "userId": "bob", "webhookId": world["webhook_id"], "attempt": 1,
        "event": {"id": "evt_cross", "type": "webhook.test", "timestamp": "2026-01-01T00:00:00.000Z", "data": {}}}))
    for handler in ("usage_worker", "generation_worker", "upload_worker", "webhook_worker"):
        deliver(handler)
    after = snapshot(client, world)
    assert after == before
