"""Team projects' events (issue 30): project.member_added / member_removed, and the webhook fan-out of a
shared project's avatar and generation events to the home user and every member."""
from __future__ import annotations

from tests.functional.conftest import PREFIX, auth, body
from tests.functional.test_events import REQUEST, add_webhook, bus, deliveries, env, stream  # noqa: F401 — fixtures
from tests.support.generation import deliver
from tests.support.webhooks import Receiver


def test_a_shared_projects_events_reach_every_members_webhooks_and_nobody_elses(client, env, stream):  # noqa: F811
    with Receiver() as inbox:
        hooks = {user: add_webhook(client, inbox.url, user=user)["id"] for user in ("alice", "ed", "vera", "rex", "bob")}
        pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "Team"})).json_body["id"]
        for user, role in (("ed", "editor"), ("vera", "viewer"), ("rex", "viewer")):
            resp = client.http.post(f"{PREFIX}/projects/{pid}/members", headers=auth(),
                                    body=body({"userId": user, "role": role}))
            assert resp.status_code == 201
        assert client.http.delete(f"{PREFIX}/projects/{pid}/members/rex", headers=auth("rex")).status_code == 204
        started = client.http.post(f"{PREFIX}/projects/{pid}/avatars/generate", headers=auth("ed"), body=body(REQUEST))
        assert started.status_code == 202, started.body
        deliver("generation_worker")
        stream.drain()
        deliver("webhook_worker", rounds=100)

    def seen(user):
        return sorted(d["type"] for d in deliveries(client, hooks[user], user) if d["status"] == "delivered")

    members = ["project.member_added"] * 3 + ["project.member_removed"]
    for user in ("alice", "ed", "vera"):
        got = seen(user)
        assert got.count("avatar.ready") == 1 and got.count("generation.completed") == 1, (user, got)
    for user in ("alice", "ed", "vera"):  # the team's changes too
        assert [t for t in seen(user) if t.startswith("project.")] == members, user
    # rex heard of his own membership, and nothing after he left; bob, never a member, of nothing
    assert seen("rex") == ["project.member_added", "project.member_removed"]
    assert seen("bob") == []


def test_member_events_carry_the_membership(client, env, bus, stream):  # noqa: F811
    pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "Team"})).json_body["id"]
    client.http.post(f"{PREFIX}/projects/{pid}/members", headers=auth(), body=body({"userId": "ed", "role": "editor"}))
    client.http.delete(f"{PREFIX}/projects/{pid}/members/ed", headers=auth())
    stream.drain()
    published = [(e["detail-type"], e["detail"]["data"]) for e in bus() if e["detail-type"].startswith("project.member")]
    assert [t for t, _ in published] == ["project.member_added", "project.member_removed"]
    for _, data in published:
        assert {k: data[k] for k in ("projectId", "userId", "role", "addedBy", "homeUserId")} == {
            "projectId": pid, "userId": "ed", "role": "editor", "addedBy": "alice", "homeUserId": "alice"}
