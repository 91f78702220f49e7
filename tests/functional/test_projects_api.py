"""Projects API through chalice.test.Client (authorizer included) over moto."""
from __future__ import annotations

import json

import boto3

from tests.functional.conftest import PREFIX, SECRET, auth, body, drain, token


def create(client, name="Brand shoot", user="alice", **extra):
    resp = client.http.post(f"{PREFIX}/projects", headers=auth(user), body=body({"name": name, **extra}))
    assert resp.status_code == 201, resp.body
    return resp.json_body


def test_health_needs_no_token(client):
    resp = client.http.get(f"{PREFIX}/health")
    assert resp.status_code == 200
    assert resp.json_body["status"] == "ok"


def test_create_then_get_project(client):
    created = create(client, "Campaign", description="Autumn")
    assert created["id"].startswith("prj_")
    assert created["avatarCount"] == 0 and created["description"] == "Autumn"
    got = client.http.get(f"{PREFIX}/projects/{created['id']}", headers=auth()).json_body
    assert got["name"] == "Campaign"
    assert got["avatars"] == {"items": [], "nextCursor": None}


def test_list_is_newest_first_and_paginates_with_opaque_cursor(client):
    names = [f"p{i}" for i in range(5)]
    for name in names:
        create(client, name)
    seen, cursor = [], None
    while True:
        url = f"{PREFIX}/projects?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.http.get(url, headers=auth()).json_body
        assert len(page["items"]) <= 2
        seen += [p["name"] for p in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
        assert "PK" not in cursor and "U#" not in cursor
    assert seen == list(reversed(names))


def test_cursor_of_another_user_is_rejected(client):
    for i in range(3):
        create(client, f"a{i}")
    cursor = client.http.get(f"{PREFIX}/projects?limit=1", headers=auth()).json_body["nextCursor"]
    resp = client.http.get(f"{PREFIX}/projects?limit=1&cursor={cursor}", headers=auth("bob"))
    assert resp.status_code == 400
    assert resp.json_body["error"]["code"] == "validation_error"


def test_update_project_changes_only_given_fields(client):
    p = create(client, "Old", description="keep me")
    resp = client.http.put(f"{PREFIX}/projects/{p['id']}", headers=auth(), body=body({"name": "New"}))
    assert resp.status_code == 200
    assert resp.json_body["name"] == "New" and resp.json_body["description"] == "keep me"
    assert resp.json_body["updatedAt"] >= p["updatedAt"]


def test_other_users_project_is_404_on_every_route(client):
    p = create(client, "Mine")
    for method, kwargs in (("get", {}), ("put", {"body": body({"name": "stolen"})}), ("delete", {})):
        resp = getattr(client.http, method)(f"{PREFIX}/projects/{p['id']}", headers=auth("bob"), **kwargs)
        assert resp.status_code == 404, (method, resp.body)
        assert resp.json_body["error"]["code"] == "not_found"
    assert client.http.get(f"{PREFIX}/projects/{p['id']}", headers=auth()).json_body["name"] == "Mine"
    assert client.http.get(f"{PREFIX}/projects", headers=auth("bob")).json_body["items"] == []


def test_delete_hides_project_at_once_and_cleanup_removes_tombstone(client, aws):
    p = create(client, "Doomed")
    assert client.http.delete(f"{PREFIX}/projects/{p['id']}", headers=auth()).status_code == 204
    assert client.http.get(f"{PREFIX}/projects/{p['id']}", headers=auth()).status_code == 404
    assert client.http.delete(f"{PREFIX}/projects/{p['id']}", headers=auth()).status_code == 404
    assert drain(client, aws, "CleanupQueueUrl", "cleanup_worker") == 1
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws["TableName"])
    assert "Item" not in table.get_item(Key={"PK": "U#alice", "SK": f"DELETING#{p['id']}"})


def test_bad_bodies_answer_400_with_error_shape(client):
    cases = [
        b"{not json", json.dumps({"name": ""}).encode(), json.dumps({"name": "x" * 101}).encode(),
        json.dumps({"name": 5}).encode(), json.dumps({"name": "ok", "extra": 1}).encode(),
        json.dumps({"name": "ok", "description": "d" * 1001}).encode(), json.dumps(["name"]).encode(), b"",
    ]
    for raw in cases:
        resp = client.http.post(f"{PREFIX}/projects", headers=auth(), body=raw)
        assert resp.status_code == 400, raw
        err = resp.json_body["error"]
        assert set(err) == {"code", "message", "details"} and err["code"] in ("validation_error", "bad_json")
    assert client.http.get(f"{PREFIX}/projects", headers=auth()).json_body["items"] == []


def test_oversized_body_is_413(client):
    raw = json.dumps({"name": "ok", "description": "x" * 70_000}).encode()
    resp = client.http.post(f"{PREFIX}/projects", headers=auth(), body=raw)
    assert resp.status_code == 413
    assert resp.json_body["error"]["code"] == "payload_too_large"


def test_bad_limit_is_400(client):
    for limit in ("0", "101", "abc"):
        resp = client.http.get(f"{PREFIX}/projects?limit={limit}", headers=auth())
        assert resp.status_code == 400, limit


def test_invalid_tokens_are_refused(client):
    import jwt as pyjwt

    bad = [
        "Bearer garbage",
        "Bearer " + token(ttl_seconds=-120),                                  # expired beyond leeway
        "Bearer " + pyjwt.encode({"sub": "alice", "exp": 9999999999}, "wrong-secret", algorithm="HS256"),
        "Bearer " + pyjwt.encode({"sub": "alice", "exp": 9999999999}, None, algorithm="none"),
        "Bearer " + pyjwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),  # no exp
        "Basic abc",
    ]
    for header in bad:
        resp = client.http.get(f"{PREFIX}/projects", headers={"Authorization": header})
        assert resp.status_code == 401, header
        assert resp.json_body["error"]["code"] == "unauthorized", header
    assert client.http.get(f"{PREFIX}/projects").status_code == 401


def test_openapi_documents_every_route(client):
    from app import app

    spec = client.http.get(f"{PREFIX}/openapi.json").json_body
    assert spec["openapi"].startswith("3.")
    for path, methods in app.routes.items():
        for method in methods:
            assert method.lower() in spec["paths"][path], (method, path)
    assert "ProjectCreate" in spec["components"]["schemas"]
