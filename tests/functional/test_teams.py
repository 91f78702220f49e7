"""Team projects (issue 30): members and roles over the API, who pays, and what a member reaches."""
from __future__ import annotations

import threading

import boto3
import pytest

from tests.functional.conftest import PREFIX, auth, body
from tests.support import images as img
from tests.support.generation import deliver


def call(client, method, path, user="alice", payload=None, headers=None):
    return client.http.request(method, PREFIX + path, headers={**auth(user), **(headers or {})},
                               body=body(payload) if payload is not None else b"")


@pytest.fixture
def project(client):
    return call(client, "POST", "/projects", payload={"name": "Campaign"}).json_body["id"]


def add(client, pid, user, role, by="alice"):
    return call(client, "POST", f"/projects/{pid}/members", by, {"userId": user, "role": role})


def uploaded(client, aws, pid, user="alice"):
    data = img.jpeg(200, 200)
    created = call(client, "POST", f"/projects/{pid}/avatars/upload", user,
                   {"name": "Face", "contentType": "image/jpeg", "size": len(data)})
    assert created.status_code == 201, created.body
    created = created.json_body
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=aws["UploadBucket"], Key=created["upload"]["fields"]["key"], Body=data, ContentType="image/jpeg")
    deliver("upload_worker")
    return created["avatar"]["id"]


def test_me_answers_the_callers_id(client):
    assert call(client, "GET", "/me", "bob").json_body == {"userId": "bob"}


def test_add_list_change_remove_and_leave(client, project):
    resp = add(client, project, "bob", "editor")
    assert resp.status_code == 201 and resp.json_body["role"] == "editor" and resp.json_body["addedBy"] == "alice"
    assert add(client, project, "carol", "viewer").status_code == 201
    members = call(client, "GET", f"/projects/{project}/members", "carol").json_body["items"]
    assert [(m["userId"], m["role"], m["home"]) for m in members] == [
        ("alice", "owner", True), ("bob", "editor", False), ("carol", "viewer", False)]
    changed = call(client, "PUT", f"/projects/{project}/members/bob", payload={"role": "owner"})
    assert changed.status_code == 200 and changed.json_body["role"] == "owner"
    # bob, now an owner, manages members too; carol (viewer) may not remove bob, but may leave
    assert call(client, "PUT", f"/projects/{project}/members/carol", "bob", {"role": "editor"}).status_code == 200
    call(client, "PUT", f"/projects/{project}/members/carol", "bob", {"role": "viewer"})
    refused = call(client, "DELETE", f"/projects/{project}/members/bob", "carol")
    assert refused.status_code == 403 and refused.json_body["error"]["code"] == "forbidden"
    assert call(client, "DELETE", f"/projects/{project}/members/carol", "carol").status_code == 204
    assert call(client, "GET", f"/projects/{project}", "carol").status_code == 404  # left: next request
    assert call(client, "DELETE", f"/projects/{project}/members/bob").status_code == 204
    assert call(client, "GET", f"/projects/{project}", "bob").status_code == 404
    assert [m["userId"] for m in call(client, "GET", f"/projects/{project}/members").json_body["items"]] == ["alice"]


def test_the_home_owner_always_stays_an_owner(client, project):
    add(client, project, "bob", "owner")
    for method, payload in (("PUT", {"role": "viewer"}), ("DELETE", None)):
        resp = call(client, method, f"/projects/{project}/members/alice", "bob", payload)
        assert resp.status_code == 409 and resp.json_body["error"]["code"] == "home_owner", resp.body
    assert call(client, "DELETE", f"/projects/{project}/members/alice", "alice").status_code == 409
    from chalicelib.teams import store

    home = store.project_home(project, consistent=True)
    assert (home.member_count, home.owner_count) == (1, 2)


def test_duplicate_adds_are_safe_and_another_role_is_a_conflict(client, project):
    first, again = add(client, project, "bob", "viewer"), add(client, project, "bob", "viewer")
    assert (first.status_code, again.status_code) == (201, 200)
    other = add(client, project, "bob", "editor")
    assert other.status_code == 409 and other.json_body["error"]["code"] == "already_member"
    assert add(client, project, "alice", "viewer").status_code == 409
    from chalicelib.teams import store

    assert store.project_home(project, consistent=True).member_count == 1


def test_concurrent_adds_count_each_member_once(client, project):
    results = []

    def run(user):
        results.append(add(client, project, user, "viewer").status_code)

    threads = [threading.Thread(target=run, args=(u,)) for u in ("bob", "bob", "carol", "dave", "carol")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count(201) == 3 and all(code in (200, 201, 503) for code in results), results
    from chalicelib.teams import store

    members = call(client, "GET", f"/projects/{project}/members").json_body["items"]
    assert sorted(m["userId"] for m in members) == ["alice", "bob", "carol", "dave"]
    assert store.project_home(project, consistent=True).member_count == 3


def test_at_most_fifty_members(client, project):
    from chalicelib.teams.service import MAX_MEMBERS

    for i in range(MAX_MEMBERS):
        assert add(client, project, f"user{i}", "viewer").status_code == 201
    refused = add(client, project, "one-too-many", "viewer")
    assert refused.status_code == 409 and refused.json_body["error"]["code"] == "member_limit"
    assert call(client, "DELETE", f"/projects/{project}/members/user0").status_code == 204
    assert add(client, project, "one-too-many", "viewer").status_code == 201


def test_roles_decide_what_a_member_may_do(client, aws, project):
    aid = uploaded(client, aws, project)
    add(client, project, "vera", "viewer")
    add(client, project, "ed", "editor")
    # viewers read everything
    assert call(client, "GET", f"/projects/{project}", "vera").json_body["myRole"] == "viewer"
    assert call(client, "GET", f"/avatars/{aid}", "vera").json_body["id"] == aid
    assert call(client, "GET", f"/projects/{project}/avatars", "vera").json_body["items"][0]["id"] == aid
    refused = call(client, "PUT", f"/avatars/{aid}", "vera", {"name": "no"})
    assert refused.status_code == 403 and refused.json_body["error"]["code"] == "forbidden"
    # editors edit
    edited = call(client, "PUT", f"/avatars/{aid}", "ed", {"name": "Edited"})
    assert edited.status_code == 200 and edited.json_body["name"] == "Edited"
    assert call(client, "GET", f"/avatars/{aid}").json_body["name"] == "Edited"  # in alice's own partition
    assert call(client, "PUT", f"/projects/{project}", "ed", {"name": "x"}).status_code == 403
    assert call(client, "DELETE", f"/projects/{project}", "ed").status_code == 403
    # someone else: 404 like an unknown id
    stranger = call(client, "GET", f"/avatars/{aid}", "mallory")
    assert stranger.status_code == 404 and stranger.json_body["error"]["code"] == "not_found"


def test_an_editors_upload_lands_in_the_home_partition(client, aws, project):
    add(client, project, "ed", "editor")
    aid = uploaded(client, aws, project, user="ed")
    mine = call(client, "GET", f"/avatars/{aid}").json_body
    assert mine["status"] == "ready" and mine["projectId"] == project
    assert call(client, "GET", f"/projects/{project}").json_body["avatarCount"] == 1


def test_a_members_generation_is_paid_by_the_member(client, aws, project, monkeypatch):
    from chalicelib import dependencies

    monkeypatch.setenv("GENERATION_PROVIDER", "offline")
    dependencies.reset()
    add(client, project, "ed", "editor")
    started = call(client, "POST", f"/projects/{project}/avatars/generate", "ed", {"prompt": "a face", "name": "G"})
    assert started.status_code == 202, started.body
    gid = started.json_body["id"]
    assert call(client, "GET", "/stats", "ed").json_body["activeGenerations"] == 1
    assert call(client, "GET", "/stats").json_body["activeGenerations"] == 0
    deliver("generation_worker")
    done = call(client, "GET", f"/generations/{gid}").json_body
    assert done["status"] == "completed"
    assert call(client, "GET", f"/generations/{gid}", "ed").json_body["status"] == "completed"
    assert call(client, "GET", "/stats", "ed").json_body["activeGenerations"] == 0
    avatar = call(client, "GET", f"/avatars/{done['avatarId']}", "ed")
    assert avatar.status_code == 200  # its HOME item was written with it
    # the member's daily quota paid for the image; the avatar counts where it lives (alice's project)
    assert call(client, "GET", "/stats", "ed").json_body["generationsToday"] == 1
    assert call(client, "GET", "/stats").json_body["generationsToday"] == 0
    assert call(client, "GET", f"/projects/{project}").json_body["avatarCount"] == 1


def test_shared_with_me_lists_projects_with_my_role(client, project):
    other = call(client, "POST", "/projects", "carol", {"name": "Carol's"}).json_body["id"]
    add(client, project, "bob", "editor")
    add(client, other, "bob", "viewer", by="carol")
    page = call(client, "GET", "/projects?shared=true&limit=1", "bob").json_body
    assert [(p["id"], p["myRole"], p["homeUserId"]) for p in page["items"]] == [(other, "viewer", "carol")]
    rest = call(client, "GET", f"/projects?shared=true&limit=1&cursor={page['nextCursor']}", "bob").json_body
    assert [(p["id"], p["myRole"]) for p in rest["items"]] == [(project, "editor")]
    own = call(client, "GET", "/projects").json_body["items"]
    assert [(p["id"], p["myRole"]) for p in own] == [(project, "owner")]
    assert call(client, "GET", "/projects", "bob").json_body["items"] == []  # bob's own list is his own


def test_a_removed_member_is_refused_on_the_next_request(client, aws, project):
    aid = uploaded(client, aws, project)
    add(client, project, "bob", "editor")
    assert call(client, "GET", f"/avatars/{aid}", "bob").status_code == 200
    call(client, "DELETE", f"/projects/{project}/members/bob")
    for path in (f"/avatars/{aid}", f"/projects/{project}", f"/projects/{project}/members"):
        resp = call(client, "GET", path, "bob")
        assert resp.status_code == 404 and resp.json_body["error"]["code"] == "not_found", path
