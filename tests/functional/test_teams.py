"""Team projects (issue 30): members and roles over the API, who pays, and what a member reaches."""
from __future__ import annotations

import threading
from datetime import timedelta

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


def test_concurrent_adds_count_each_member_once(client, project, monkeypatch):
    from chalicelib.aws.db import Transaction
    from chalicelib.dependencies import get_deps
    from chalicelib.errors import DependencyError
    from chalicelib.teams import service, store

    # DynamoDB applies each transaction atomically; moto applies a transaction's items without isolation
    # from another thread's (a lost update of memberCount that DynamoDB cannot make). One lock around
    # each commit gives moto DynamoDB's guarantee and leaves open the race under test: our reads, then
    # our transaction, interleaved across threads.
    atomic, commit = threading.Lock(), Transaction.commit

    def serialized(self):
        with atomic:
            return commit(self)
    monkeypatch.setattr(Transaction, "commit", serialized)
    deps = get_deps()
    results: list = []
    barrier = threading.Barrier(6)

    def run(user, role):
        # The domain call, not the HTTP route: chalice's test client swaps os.environ per request,
        # which is not safe from several threads at once.
        barrier.wait()
        try:
            results.append(service.add_member(deps.dynamodb, deps.sqs, deps.settings.cleanup_queue_url, home="alice",
                                              project_id=project, actor="alice", user_id=user, role=role)[1])
        except DependencyError:  # a transaction conflict: 503, retry later
            results.append("busy")

    users = [("bob", "viewer"), ("bob", "viewer"), ("carol", "owner"), ("carol", "owner"), ("dave", "editor"),
             ("erin", "viewer")]
    threads = [threading.Thread(target=run, args=u) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and results.count(True) >= 1, results
    members = {m.user_id: m.role for m in store.members(project)}
    home = store.project_home(project, consistent=True)
    # whatever won, the counts match the memberships that exist
    assert home.member_count == len(members) and home.owner_count == 1 + list(members.values()).count("owner")
    assert results.count(True) == len(members)


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
    from infra.audit import audit

    # the audit counts ed's running job with ed, though it lives in alice's partition
    assert [str(f) for f in audit(None) if f.kind == "counter"] == []
    assert [str(f) for f in audit(["alice"]) + audit(["ed"]) if f.kind == "counter"] == []
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


def _usage_event(avatar_id, user, event_id):
    return {"eventId": event_id, "userId": user, "avatarId": avatar_id, "appId": "pose-generator",
            "appName": "Pose Generator", "action": "generate_pose", "occurredAt": "2026-12-01T10:00:00Z"}


def test_usage_from_members_is_recorded_on_the_home_avatar(client, aws, project):
    import json

    aid = uploaded(client, aws, project)
    add(client, project, "vera", "viewer")
    add(client, project, "rex", "viewer")
    call(client, "DELETE", f"/projects/{project}/members/rex")
    over_http = call(client, "POST", f"/avatars/{aid}/usage", "vera",
                     {"eventId": "evt-http", "appId": "pose-generator", "appName": "Pose", "action": "use"})
    assert over_http.status_code == 201, over_http.body
    sqs = boto3.client("sqs", region_name="us-east-1")
    for user, event_id in (("vera", "evt-sqs"), ("rex", "evt-removed"), ("mallory", "evt-stranger")):
        sqs.send_message(QueueUrl=aws["UsageEventsQueueUrl"], MessageBody=json.dumps(_usage_event(aid, user, event_id)))
    deliver("usage_worker")
    deliver("usage_worker")  # a redelivery changes nothing (the home's markers)
    history = call(client, "GET", f"/avatars/{aid}/usage-history").json_body
    assert sorted(r["eventId"] for r in history["items"]) == ["evt-http", "evt-sqs"]
    assert call(client, "GET", f"/avatars/{aid}").json_body["usageCount"] == 2
    assert call(client, "GET", f"/avatars/{aid}/usage-history", "vera").json_body["summary"] == history["summary"]
    assert call(client, "GET", "/stats").json_body["totalUsage"] == 2  # counted where the avatar lives


def test_a_members_export_is_theirs_and_holds_the_shared_avatars(client, aws, project):
    uploaded(client, aws, project)
    add(client, project, "vera", "viewer")
    started = call(client, "POST", f"/projects/{project}/export", "vera")
    assert started.status_code == 202, started.body
    deliver("export_worker")
    export = call(client, "GET", f"/exports/{started.json_body['id']}", "vera").json_body
    assert export["status"] == "completed" and export["progress"] == {"done": 1, "total": 1}, export
    assert call(client, "GET", f"/exports/{started.json_body['id']}").status_code == 404  # vera's, not alice's


def test_deleting_a_project_removes_its_memberships_and_home_items(client, aws, project):
    from chalicelib.teams import store

    aid = uploaded(client, aws, project)
    add(client, project, "bob", "owner")
    gid = call(client, "POST", f"/projects/{project}/avatars/generate", payload={"prompt": "a face", "name": "G"}
               ).json_body["id"]
    assert call(client, "DELETE", f"/projects/{project}", "bob").status_code == 204  # an owner member may
    assert call(client, "GET", "/projects?shared=true", "bob").json_body["items"] == []
    for _ in range(5):
        if not deliver("cleanup_worker"):
            break
    assert store.project_home(project, consistent=True) is None and store.membership(project, "bob") is None
    assert store.item_home("avatar", aid) is None and store.item_home("generation", gid) is None
    assert call(client, "GET", "/stats").json_body["totalProjects"] == 0  # alice's count: the project was hers


def test_a_project_from_before_teams_gets_its_home_items_when_first_shared(client, aws, project):
    from chalicelib.aws.models import ItemHomeModel, ProjectHomeModel, avatar_home_pk, team_pk
    from chalicelib.teams import store

    aid = uploaded(client, aws, project)
    # as written before issue 30: no HOME items at all
    ProjectHomeModel(team_pk(project), "HOME").delete()
    ItemHomeModel(avatar_home_pk(aid), "HOME").delete()
    assert add(client, project, "vera", "viewer").status_code == 201
    home = store.project_home(project, consistent=True)
    assert (home.home, home.member_count, home.owner_count, home.backfill) == ("alice", 1, 1, "pending")
    assert call(client, "GET", f"/projects/{project}", "vera").status_code == 200
    assert call(client, "GET", f"/avatars/{aid}", "vera").status_code == 404  # until the backfill ran
    # its message lost: the sweeper starts the backfill again once it made no step for its grace period
    from chalicelib import clock
    from chalicelib.dependencies import get_deps
    from chalicelib.housekeeping.sweeper import sweep
    from chalicelib.teams.service import BACKFILL_GRACE_SECONDS
    sqs = boto3.client("sqs", region_name="us-east-1")
    [lost] = sqs.receive_message(QueueUrl=aws["CleanupQueueUrl"], MaxNumberOfMessages=10).get("Messages", [])
    sqs.delete_message(QueueUrl=aws["CleanupQueueUrl"], ReceiptHandle=lost["ReceiptHandle"])
    deps = get_deps()
    assert sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, files=False).backfills_resent == []
    later = clock.now() + timedelta(seconds=BACKFILL_GRACE_SECONDS + 1)
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=later, files=False)
    assert report.backfills_resent == [project]
    assert deliver("cleanup_worker") == 1
    assert call(client, "GET", f"/avatars/{aid}", "vera").status_code == 200
    done = store.project_home(project, consistent=True)
    assert done.backfill is None and done.sweep_sk is None  # out of the sweep index
    assert sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=later, files=False).backfills_resent == []


def test_a_members_read_makes_four_calls_more_than_an_owners(client, aws, project):
    from tests.support.ddb_calls import DynamoDBCalls

    aid = uploaded(client, aws, project)
    add(client, project, "vera", "viewer")
    keys = {"alice": [f"U#alice#A#{aid}"],
            "vera": [f"U#vera#A#{aid}", f"AVA#{aid}", f"PRJ#{project}", f"U#alice#A#{aid}"],
            "mallory": [f"U#mallory#A#{aid}", f"AVA#{aid}", f"PRJ#{project}"]}
    for user, expected in keys.items():
        with DynamoDBCalls() as calls:
            resp = call(client, "GET", f"/avatars/{aid}", user)
        assert resp.status_code == (404 if user == "mallory" else 200)
        # a ready avatar's read also lists its derivatives (issue 29, lineage): one Query in the home's
        # partition, the same for owner and member
        lineage = ["Query"] if user != "mallory" else []
        assert calls.names == ["GetItem"] * len(expected) + lineage, (user, calls.names)
        assert [b["Key"]["PK"]["S"] for b in calls.bodies[:len(expected)]] == expected
        if user != "alice":  # the membership: consistent, so a removal counts from the next request
            assert calls.bodies[2]["Key"]["SK"]["S"] == f"M#{user}" and calls.bodies[2].get("ConsistentRead") is True


@pytest.mark.parametrize("n", [2, 21])  # 21: one more shared project than the page of 20
def test_team_reads_make_the_same_calls_whatever_the_numbers(client, project, n):
    from chalicelib.teams.service import MAX_MEMBERS
    from tests.support.ddb_calls import DynamoDBCalls

    for i in range(n):
        other = call(client, "POST", "/projects", "carol", {"name": f"C{i}"}).json_body["id"]
        add(client, other, "bob", "viewer", by="carol")
    for i in range(MAX_MEMBERS if n > 2 else 1):
        add(client, project, f"user{i}", "viewer")
    expected = {
        ("alice", f"/projects/{project}/members"): ["GetItem", "Query"],
        ("user0", f"/projects/{project}/members"): ["GetItem"] * 4 + ["Query"],  # the resolver's 3 first
        ("bob", "/projects?shared=true&limit=20"): ["Query", "BatchGetItem"],
        ("bob", "/me"): [],
    }
    for (user, path), names in expected.items():
        with DynamoDBCalls() as calls:
            resp = call(client, "GET", path, user)
        assert resp.status_code == 200, (path, resp.body)
        assert calls.names == names, (user, path, calls.names)
    assert len(call(client, "GET", f"/projects/{project}/members").json_body["items"]) == 1 + (MAX_MEMBERS if n > 2 else 1)
    assert len(call(client, "GET", "/projects?shared=true&limit=20", "bob").json_body["items"]) == min(n, 20)


def test_editors_make_list_and_revoke_share_links_of_the_shared_avatars(client, aws, project):
    aid = uploaded(client, aws, project)
    add(client, project, "ed", "editor")
    add(client, project, "vera", "viewer")
    made = call(client, "POST", f"/avatars/{aid}/shares", "ed", {})
    assert made.status_code == 201, made.body
    listed = call(client, "GET", f"/avatars/{aid}/shares").json_body["items"]  # with the avatar, in alice's
    assert [s["id"] for s in listed] == [made.json_body["id"]]
    assert client.http.get(PREFIX + made.json_body["link"][len(PREFIX):]).status_code == 200
    refused = call(client, "DELETE", f"/shares/{made.json_body['id']}", "vera")
    assert refused.status_code == 403 and refused.json_body["error"]["details"]["required"] == "editor"
    assert call(client, "DELETE", f"/shares/{made.json_body['id']}", "mallory").status_code == 404
    alices = call(client, "POST", f"/avatars/{aid}/shares", payload={}).json_body
    assert call(client, "DELETE", f"/shares/{alices['id']}", "ed").status_code == 204
    statuses = {s["id"]: s["status"] for s in call(client, "GET", f"/avatars/{aid}/shares", "ed").json_body["items"]}
    assert statuses == {made.json_body["id"]: "active", alices["id"]: "revoked"}
