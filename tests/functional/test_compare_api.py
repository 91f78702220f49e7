"""Compare (issue 29, item 4) over moto: the per-avatar daily counters written in the usage recording
transaction (exactly once, on the event's UTC day), and GET /projects/{id}/compare — the side-by-side
answer, its window, its refusals (400) and its 404s for what is not the caller's."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock, dependencies
from chalicelib.aws.models import AVATAR_DAY_TTL_DAYS, AvatarDayUsageModel, avatar_days_pk
from chalicelib.config import USAGE_EVENTS_QUEUE_ARN
from tests.functional.conftest import PREFIX, auth
from tests.support.ddb_calls import DynamoDBCalls
from tests.support.usage import body, event, new_project, ready_avatar

USAGE_EVENTS_QUEUE = USAGE_EVENTS_QUEUE_ARN.rsplit(":", 1)[-1]


@pytest.fixture
def world(aws, client, monkeypatch):
    """GIVEN alice with a project of three ready avatars and another project of one; bob with one
    project and avatar; the clock held at one moment (so "today" cannot move during a test)."""
    frozen = clock.now()
    monkeypatch.setattr(clock, "now", lambda: frozen)
    dependencies.reset()
    conn = dependencies.get_deps().dynamodb
    project = new_project(conn, "alice", "Compare")
    a1, a2, a3 = (ready_avatar(conn, "alice", project, name=n) for n in ("Ayu", "Budi", "Citra"))
    elsewhere = new_project(conn, "alice", "Elsewhere")
    other_project_avatar = ready_avatar(conn, "alice", elsewhere, name="Dewi")
    bob_project = new_project(conn, "bob", "Bob's")
    bob_avatar = ready_avatar(conn, "bob", bob_project, name="Bob")
    return {"client": client, "conn": conn, "now": frozen, "project": project, "a1": a1, "a2": a2, "a3": a3,
            "elsewhere": elsewhere, "other_project_avatar": other_project_avatar, "bob_project": bob_project,
            "bob_avatar": bob_avatar}


def consume(client, *events) -> dict:
    records = [body(e) for e in events]
    sqs_event = client.events.generate_sqs_event(queue_name=USAGE_EVENTS_QUEUE, message_bodies=records)
    return client.lambda_.invoke("usage_worker", sqs_event).payload


def at(world, days_ago: int, hour: int = 12) -> str:
    moment = (world["now"] - timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return clock.iso(min(moment, world["now"]))


def compare(world, ids, user="alice", project=None, days=None):
    query = f"?avatars={','.join(ids)}" + (f"&days={days}" if days is not None else "")
    return world["client"].http.get(f"{PREFIX}/projects/{project or world['project']}/compare{query}",
                                    headers=auth(user))


def counters(user, avatar_id) -> dict[str, int]:
    return {item.sk: int(item.uses) for item in AvatarDayUsageModel.query(avatar_days_pk(user, avatar_id),
                                                                          consistent_read=True)}


def day(world, days_ago: int) -> str:
    return (world["now"] - timedelta(days=days_ago)).strftime("%Y-%m-%d")


# ---- the counters ----------------------------------------------------------------------------------

def test_each_event_counts_once_on_its_own_utc_day_per_app(world):
    a1 = world["a1"]
    events = [event("alice", a1, appId="pose-generator", appName="Pose", occurredAt=at(world, 0)),
              event("alice", a1, appId="pose-generator", appName="Pose", occurredAt=at(world, 0, hour=1)),
              event("alice", a1, appId="video-generator", appName="Video", occurredAt=at(world, 0)),
              # arrives today, happened two days ago: counted on that day
              event("alice", a1, appId="pose-generator", appName="Pose", occurredAt=at(world, 2))]

    assert consume(world["client"], *events) == {"batchItemFailures": []}

    assert counters("alice", a1) == {f"{day(world, 0)}#pose-generator": 2, f"{day(world, 0)}#video-generator": 1,
                                     f"{day(world, 2)}#pose-generator": 1}
    item = AvatarDayUsageModel.get(avatar_days_pk("alice", a1), f"{day(world, 2)}#pose-generator")
    assert item.app_id == "pose-generator" and item.app_name == "Pose" and item.day == day(world, 2)
    midnight = world["now"].replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    assert item.ttl == clock.epoch(midnight) + AVATAR_DAY_TTL_DAYS * 86400


def test_a_redelivered_batch_and_a_resent_event_change_no_daily_counter(world):
    a1, a2 = world["a1"], world["a2"]
    batch = [event("alice", a1, occurredAt=at(world, 1)), event("alice", a2, occurredAt=at(world, 0)),
             event("alice", a1, appId="poster-maker", appName="Poster", occurredAt=at(world, 0))]
    consume(world["client"], *batch)
    before = (counters("alice", a1), counters("alice", a2))

    consume(world["client"], *batch)  # SQS redelivers the whole batch
    consume(world["client"], batch[1], batch[1])  # an app re-sends one event, twice in one batch
    resp = world["client"].http.post(f"{PREFIX}/avatars/{a1}/usage", headers=auth(), body=body(
        {k: batch[0][k] for k in ("eventId", "appId", "appName", "action", "occurredAt")}))  # and over HTTP

    assert resp.status_code == 200 and resp.json_body["status"] == "duplicate"
    assert (counters("alice", a1), counters("alice", a2)) == before
    assert sum(before[0].values()) == 2 and sum(before[1].values()) == 1


def test_deleting_an_avatar_removes_its_daily_counters(world):
    consume(world["client"], event("alice", world["a1"], occurredAt=at(world, 0)))
    assert counters("alice", world["a1"])

    resp = world["client"].http.delete(f"{PREFIX}/avatars/{world['a1']}", headers=auth())

    assert resp.status_code == 204, resp.body
    assert counters("alice", world["a1"]) == {}


# ---- the route -------------------------------------------------------------------------------------

def test_compare_answers_side_by_side_with_zero_filled_series_per_app(world):
    a1, a2, a3 = world["a1"], world["a2"], world["a3"]
    consume(world["client"],
            event("alice", a1, appId="pose-generator", appName="Pose Generator", occurredAt=at(world, 0)),
            event("alice", a1, appId="pose-generator", appName="Pose Generator", occurredAt=at(world, 6)),
            event("alice", a1, appId="video-generator", appName="Video Generator", occurredAt=at(world, 6)),
            event("alice", a2, appId="video-generator", appName="Video Generator", occurredAt=at(world, 3)),
            event("alice", a1, appId="pose-generator", appName="Pose Generator", occurredAt=at(world, 7)))  # outside 7 days
    edited = world["client"].http.put(f"{PREFIX}/avatars/{a2}", headers=auth(),
                                      body=body({"gender": "male", "style": "casual", "personaAge": 31}))
    assert edited.status_code == 200, edited.body

    resp = compare(world, [a2, a1, a3], days=7)

    assert resp.status_code == 200, resp.body
    out = resp.json_body
    assert out["days"] == 7 and out["dates"] == [day(world, n) for n in range(6, -1, -1)]
    assert (out["from"], out["to"]) == (day(world, 6), day(world, 0))
    assert [c["avatar"]["id"] for c in out["avatars"]] == [a2, a1, a3]  # the order asked
    b, a, c = out["avatars"]
    assert a["total"] == 3 and a["daily"] == [2, 0, 0, 0, 0, 0, 1]
    assert a["byApp"] == [
        {"appId": "pose-generator", "appName": "Pose Generator", "total": 2, "daily": [1, 0, 0, 0, 0, 0, 1]},
        {"appId": "video-generator", "appName": "Video Generator", "total": 1, "daily": [1, 0, 0, 0, 0, 0, 0]}]
    assert b["total"] == 1 and b["daily"] == [0, 0, 0, 1, 0, 0, 0]
    assert c["total"] == 0 and c["daily"] == [0] * 7 and c["byApp"] == []
    assert out["apps"] == [{"appId": "pose-generator", "appName": "Pose Generator", "total": 2},
                           {"appId": "video-generator", "appName": "Video Generator", "total": 2}]
    assert (b["avatar"]["name"], b["avatar"]["gender"], b["avatar"]["style"], b["avatar"]["personaAge"]) == \
        ("Budi", "male", "casual", 31)
    assert b["avatar"]["thumbnailUrl"] and b["avatar"]["imageUrl"] and b["avatar"]["usageCount"] == 1
    assert not any(x["truncated"] for x in out["avatars"])

    wider = compare(world, [a1, a2]).json_body  # default: 30 days
    assert wider["days"] == 30 and len(wider["dates"]) == 30 and wider["avatars"][0]["total"] == 4
    today_only = compare(world, [a1, a2], days=1).json_body
    assert today_only["dates"] == [day(world, 0)] and [x["daily"] for x in today_only["avatars"]] == [[1], [0]]


def test_compare_makes_one_batch_get_and_one_query_per_avatar(world):
    for n, ids in ((2, [world["a1"], world["a2"]]), (3, [world["a1"], world["a2"], world["a3"]])):
        with DynamoDBCalls() as calls:
            resp = compare(world, ids, days=90)
        assert resp.status_code == 200, resp.body
        assert calls.names == ["BatchGetItem"] + ["Query"] * n


@pytest.mark.parametrize("query, field", [
    ("", "avatars"),
    ("?avatars=", "avatars"),
    ("?avatars={a1}", "avatars"),
    ("?avatars={a1},{a2},{a3},{x1},{x2}", "avatars"),  # 5 ids
    ("?avatars={a1},{a1}", "avatars"),  # the same twice
    ("?avatars={a1},{a2},{a1}", "avatars"),
    ("?avatars={a1},nope", "avatars.1"),
    ("?avatars={a1},prj_01HZZZZZZZZZZZZZZZZZZZZZZZ", "avatars.1"),
    ("?avatars={a1},%3Cscript%3E", "avatars.1"),
    ("?avatars={a1},{long}", "avatars.1"),
    ("?avatars={a1},{a2}&days=0", "days"),
    ("?avatars={a1},{a2}&days=91", "days"),
    ("?avatars={a1},{a2}&days=-1", "days"),
    ("?avatars={a1},{a2}&days=abc", "days"),
    ("?avatars={a1},{a2}&days=7.5", "days"),
])
def test_refusals_are_400_with_details_and_read_nothing(world, query, field):
    from chalicelib import ids

    url = query.format(a1=world["a1"], a2=world["a2"], a3=world["a3"], x1=ids.new_id("ava"), x2=ids.new_id("ava"),
                       long="ava_" + "A" * 3000)
    with DynamoDBCalls() as calls:
        resp = world["client"].http.get(f"{PREFIX}/projects/{world['project']}/compare{url}", headers=auth())

    assert resp.status_code == 400, resp.body
    error = resp.json_body["error"]
    assert error["code"] == "validation_error" and error["message"]
    assert any(d["field"] == field for d in error["details"]), error
    assert "<script>" not in resp.body.decode() and "AAAA" not in resp.body.decode()  # input is not echoed
    assert calls.names == []


def test_what_is_not_the_callers_or_not_in_the_project_is_404(world):
    from chalicelib import ids

    mine = [world["a1"], world["a2"]]
    cases = {
        "bob, alice's project and avatars": compare(world, mine, user="bob"),
        "alice, bob's avatar in her project": compare(world, [world["a1"], world["bob_avatar"]]),
        "alice, bob's project with bob's avatar": compare(world, [world["bob_avatar"], world["a1"]],
                                                          project=world["bob_project"]),
        "alice, her avatar of another project": compare(world, [world["a1"], world["other_project_avatar"]]),
        "alice, her avatars under her other project": compare(world, mine, project=world["elsewhere"]),
        "an unknown avatar": compare(world, [world["a1"], ids.new_id("ava")]),
        "an unknown project": compare(world, mine, project=ids.new_id("prj")),
        "a malformed project id": compare(world, mine, project="not-a-project"),
    }
    for name, resp in cases.items():
        assert resp.status_code == 404, (name, resp.status_code, resp.body)
        assert resp.json_body["error"]["code"] == "not_found", name
    # the same answer whether the id is bob's or nobody's: nothing says another user's exists
    assert cases["alice, bob's avatar in her project"].json_body["error"]["message"] == \
        cases["an unknown avatar"].json_body["error"]["message"]


def test_a_deleted_avatar_or_project_is_404(world):
    client = world["client"]
    assert client.http.delete(f"{PREFIX}/avatars/{world['a3']}", headers=auth()).status_code == 204
    assert compare(world, [world["a1"], world["a3"]]).status_code == 404
    assert client.http.delete(f"{PREFIX}/projects/{world['project']}", headers=auth()).status_code == 204
    # the purge runs later: the avatars still exist, but the project is gone at once
    assert compare(world, [world["a1"], world["a2"]]).status_code == 404


def test_the_audit_finds_daily_counters_whose_avatar_is_gone(world):
    """Issue 29, item 7: nothing of an avatar outlives it. Its delete takes the daily counters with it;
    counters left by hand (or a bug) under a missing avatar are an orphan finding of the audit."""
    from chalicelib import ids
    from infra.audit import orphaned_partitions

    consume(world["client"], event("alice", world["a1"], occurredAt=at(world, 0)))
    assert world["client"].http.delete(f"{PREFIX}/avatars/{world['a1']}", headers=auth()).status_code == 204
    assert orphaned_partitions() == []
    ghost = ids.new_id("ava")
    AvatarDayUsageModel(avatar_days_pk("alice", ghost), f"{day(world, 0)}#pose-generator", app_id="pose-generator",
                        day=day(world, 0), uses=2).save()

    found = orphaned_partitions()

    assert [(f.kind, f.user_id) for f in found] == [("orphan", "alice")] and f"under U#alice#A#{ghost} whose" in str(found[0])


def test_a_full_group_of_events_on_different_avatars_apps_and_days_fits_one_transaction(world):
    """The worst case of the recording transaction since the daily counters: GROUP_MAX events, each on
    its own avatar, app and day — 6n + 1 items, within DynamoDB's 100."""
    from chalicelib.usage import service as usage

    n = usage.GROUP_MAX
    avatar_ids = [ready_avatar(world["conn"], "alice", world["project"], name=f"G{i}") for i in range(n)]
    events = [usage.parse_event(body(event("alice", aid, appId=f"app-{i}", appName=f"App {i}", occurredAt=at(world, i))))
              for i, aid in enumerate(avatar_ids)]
    with DynamoDBCalls() as calls:
        results = usage.record_group(world["conn"], events)

    assert [r.status for r in results] == ["recorded"] * n and calls.names == ["TransactWriteItems"]
    assert 6 * n + 1 <= 100
    assert all(counters("alice", aid) == {f"{day(world, i)}#app-{i}": 1} for i, aid in enumerate(avatar_ids))
