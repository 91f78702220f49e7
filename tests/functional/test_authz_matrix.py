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
         "version", "member_id"} | SHARED | PUBLIC

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
    ("POST", "/projects/{project_id}/members"): {"userId": "zed", "role": "viewer"},
    ("PUT", "/projects/{project_id}/members/{member_id}"): {"role": "editor"},
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
           "attribute": "glasses",  # /avatars/{avatar_id}/suggestions/{attribute}: a valid name, A's avatar
           "member_id": "tom"}  # /projects/{project_id}/members/{member_id}: a member of A's project (issue 30)
    assert client.http.post(f"{PREFIX}/projects/{pid}/members", headers=auth(),
                            body=body({"userId": "tom", "role": "viewer"})).status_code == 201
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


# ---- issue 30: every route x {owner, editor, viewer, non-member, removed member} -------------------

# Callers of alice's project besides alice: a member per role, a stranger, and a member removed.
MEMBERS = {"owen": "owner", "ed": "editor", "vera": "viewer"}
OUTSIDERS = ("bob", "rex")  # bob never was a member; rex was, and was removed
RANK = {"viewer": 0, "editor": 1, "owner": 2}
# Answers last: what removes the objects the other calls need.
LAST = [("DELETE", "/projects/{project_id}/members/{member_id}"), ("DELETE", "/avatars/{avatar_id}"),
        ("DELETE", "/projects/{project_id}")]


def declared_roles() -> dict[tuple[str, str], str | None]:
    from app import app

    return {(method, path[len(PREFIX):]): getattr(entry.view_function.__openapi__, "role", None)
            for path, methods in app.routes.items() for method, entry in methods.items()}


def test_every_route_declares_its_minimum_role():
    from chalicelib.api.http import ROLES, TEAM_ROLES

    roles = declared_roles()
    assert not [r for r, role in roles.items() if role not in ROLES], "declare role= on these routes' @operation"
    # A team role only means something on a route whose path names a project, avatar, generation or
    # share link (the objects with a HOME item).
    team_params = {"project_id", "avatar_id", "generation_id", "share_id"}
    for (method, path), role in roles.items():
        names = set(re.findall(r"{(\w+)}", path))
        if role in TEAM_ROLES:
            assert names & team_params, (method, path)
        elif names & team_params:
            raise AssertionError(f"{method} {path} names a shared object: give it a team role")


def test_the_openapi_document_carries_each_routes_role(client):
    spec = client.http.get(f"{PREFIX}/openapi.json").json_body
    for (method, path), role in declared_roles().items():
        assert spec["paths"][PREFIX + path][method.lower()]["x-min-role"] == role


@pytest.fixture
def team(client, world):
    pid = world["project_id"]
    for user, role in {**MEMBERS, "rex": "editor"}.items():
        assert client.http.post(f"{PREFIX}/projects/{pid}/members", headers=auth(),
                                body=body({"userId": user, "role": role})).status_code == 201
    assert client.http.delete(f"{PREFIX}/projects/{pid}/members/rex", headers=auth()).status_code == 204
    return world


def team_routes() -> list[tuple[str, str, list[str], str]]:
    from chalicelib.api.http import TEAM_ROLES

    roles = declared_roles()
    routes = [(m, p, params, roles[(m, p)]) for m, p, params in routes_with_ids() if roles[(m, p)] in TEAM_ROLES]
    return sorted(routes, key=lambda r: (LAST.index((r[0], r[1])) if (r[0], r[1]) in LAST else -1, r[1], r[0]))


def _request(client, user, method, path, params, ids):
    url = PREFIX + path.format(**{p: ids[p] for p in params}) + QUERIES.get((method, path), lambda _: "")(ids)
    payload = BODIES.get((method, path))
    return client.http.request(method, url, headers=auth(user), body=body(payload) if payload is not None else b"")


def test_outsiders_and_low_roles_are_refused_on_every_team_route_and_change_nothing(client, team):
    before = snapshot(client, team)
    tried = 0
    for method, path, params, role in team_routes():
        for user in OUTSIDERS:
            resp = _request(client, user, method, path, params, team)
            assert resp.status_code == 404, (user, method, path, resp.status_code, resp.body)
            assert resp.json_body["error"]["code"] == "not_found"
        for user, member_role in MEMBERS.items():
            if RANK[member_role] >= RANK[role]:
                continue
            if (method, path) == ("DELETE", "/projects/{project_id}/members/{member_id}"):
                continue  # a viewer may leave: removing someone else is the owner's (below)
            resp = _request(client, user, method, path, params, team)
            assert resp.status_code == 403, (user, method, path, resp.status_code, resp.body)
            assert resp.json_body["error"]["code"] == "forbidden" and resp.json_body["error"]["details"]["required"] == role
        tried += 1
    assert tried >= 25
    for user in ("ed", "vera"):
        resp = client.http.delete(f"{PREFIX}/projects/{team['project_id']}/members/tom", headers=auth(user))
        assert resp.status_code == 403, resp.body
    assert snapshot(client, team) == before


def test_members_with_the_role_reach_every_team_route(client, team):
    """Each route called by the member holding exactly its minimum role: the answer is the route's
    own (2xx, or a domain 409/400 such as cancelling a finished job), never 403/404."""
    by_role = {role: user for user, role in MEMBERS.items()}
    answers = {}
    leave_or_remove = ("DELETE", "/projects/{project_id}/members/{member_id}")
    for method, path, params, role in team_routes():
        # Any member may leave (the route's role); removing another member takes an owner.
        user = by_role["owner"] if (method, path) == leave_or_remove else by_role[role]
        resp = _request(client, user, method, path, params, team)
        answers[(method, path)] = resp.status_code
        assert resp.status_code not in (401, 403, 404) and resp.status_code < 500, (method, path, resp.status_code,
                                                                                   resp.body)
    assert answers[("GET", "/projects/{project_id}")] == 200
    assert answers[("DELETE", "/projects/{project_id}")] == 204
    # the project went for everyone: its home owner and every member
    for user in ("alice", *MEMBERS):
        assert client.http.get(f"{PREFIX}/projects/{team['project_id']}", headers=auth(user)).status_code == 404


def test_members_get_404_on_the_home_users_own_objects(client, team):
    """Webhooks and exports by id are per user: a member of the project sees none of alice's."""
    roles = declared_roles()
    for method, path, params in routes_with_ids():
        if roles[(method, path)] != "user" or set(params) & (SHARED | PUBLIC):
            continue
        for user in MEMBERS:
            resp = _request(client, user, method, path, params, team)
            assert resp.status_code == 404, (user, method, path, resp.status_code)
