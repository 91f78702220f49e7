"""Usage tracking over moto: the SQS consumer (exactly-once effects, rejections to the DLQ, partial
batch responses), the HTTP report, the history with its summary, and /stats."""
from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from chalicelib import clock, dependencies

from chalicelib.avatars import service as avatars
from chalicelib.config import USAGE_EVENTS_QUEUE_ARN
from chalicelib.aws.models import UserDayModel, user_pk
from tests.functional.conftest import PREFIX, auth, body
from tests.support.usage import attribute, event, new_project, ready_avatar, take_all

# generate_sqs_event wants a name: the placeholder ARN ends in the local queue's name.
USAGE_EVENTS_QUEUE = USAGE_EVENTS_QUEUE_ARN.rsplit(":", 1)[-1]


@pytest.fixture
def usage_aws(aws, monkeypatch):
    monkeypatch.setenv("USAGE_EVENTS_DLQ_URL", aws["UsageEventsDlqUrl"])
    dependencies.reset()
    return aws


@pytest.fixture
def env(usage_aws, client):
    """GIVEN alice with one project and two ready uploaded avatars."""
    deps = dependencies.get_deps()
    project = new_project(deps.dynamodb, "alice")
    a1 = ready_avatar(deps.dynamodb, "alice", project, name="One")
    a2 = ready_avatar(deps.dynamodb, "alice", project, name="Two")
    sqs = boto3.client("sqs", region_name="us-east-1")
    return {"client": client, "aws": usage_aws, "project": project, "a1": a1, "a2": a2, "sqs": sqs,
            "conn": deps.dynamodb}


def consume(client, *bodies) -> dict:
    """One invocation of the usage worker with these message bodies, as the event source mapping sends them."""
    records = [b if isinstance(b, str) else body(b).decode() for b in bodies]
    sqs_event = client.events.generate_sqs_event(queue_name=USAGE_EVENTS_QUEUE, message_bodies=records)
    return client.lambda_.invoke("usage_worker", sqs_event).payload


def usage_count(user, avatar_id) -> int:
    return int(avatars.get_avatar(user, avatar_id, consistent=True).usage_count or 0)


def history(client, avatar_id, user="alice", query=""):
    resp = client.http.get(f"{PREFIX}/avatars/{avatar_id}/usage-history{query}", headers=auth(user))
    assert resp.status_code == 200, resp.body
    return resp.json_body


def stats(client, user="alice"):
    resp = client.http.get(f"{PREFIX}/stats", headers=auth(user))
    assert resp.status_code == 200, resp.body
    return resp.json_body


def dlq(env) -> list[dict]:
    return take_all(env["sqs"], env["aws"]["UsageEventsDlqUrl"])


# ---- the consumer -------------------------------------------------------------------------------

def test_redelivered_event_is_counted_once(env):
    e = event("alice", env["a1"])
    assert consume(env["client"], e, e) == {"batchItemFailures": []}   # twice in one batch
    assert consume(env["client"], e) == {"batchItemFailures": []}      # redelivered later

    assert usage_count("alice", env["a1"]) == 1
    h = history(env["client"], env["a1"])
    assert [i["eventId"] for i in h["items"]] == [e["eventId"]]
    assert h["summary"] == [{"appId": "pose-generator", "appName": "Pose Generator", "count": 1,
                             "lastUsedAt": e["occurredAt"]}]
    assert stats(env["client"])["totalUsage"] == 1
    assert dlq(env) == []


def test_recorded_event_updates_avatar_history_summary_and_totals(env):
    e = event("alice", env["a1"], metadata={"poses": 4, "hd": True, "note": None, "ratio": 0.75})
    consume(env["client"], e)

    avatar = avatars.get_avatar("alice", env["a1"])
    assert (avatar.usage_count, avatar.last_used_at) == (1, e["occurredAt"])
    item = history(env["client"], env["a1"])["items"][0]
    assert item["metadata"] == {"poses": 4, "hd": True, "note": None, "ratio": 0.75}
    assert (item["appId"], item["action"], item["referenceId"], item["referenceType"]) == \
        ("pose-generator", "pose.generated", "job-1", "pose_job")
    assert item["recordedAt"] >= item["occurredAt"]
    assert stats(env["client"])["usageByApp"] == [
        {"appId": "pose-generator", "appName": "Pose Generator", "count": 1, "lastUsedAt": e["occurredAt"]}]


def test_other_users_avatar_changes_nothing_and_goes_to_dlq(env):
    deps = dependencies.get_deps()
    bob_avatar = ready_avatar(deps.dynamodb, "bob", new_project(deps.dynamodb, "bob"))
    # bob claims alice's avatar; alice "uses" bob's avatar
    stolen = event("bob", env["a1"])
    foreign = event("alice", bob_avatar)

    assert consume(env["client"], stolen, foreign) == {"batchItemFailures": []}

    assert usage_count("alice", env["a1"]) == 0 and usage_count("bob", bob_avatar) == 0
    assert stats(env["client"], "alice")["totalUsage"] == 0 and stats(env["client"], "bob")["totalUsage"] == 0
    assert history(env["client"], env["a1"])["summary"] == []
    parked = dlq(env)
    assert sorted(m["Body"] for m in parked) == sorted([body(stolen).decode(), body(foreign).decode()])
    assert {attribute(m, "rejectCode") for m in parked} == {"not_found"}
    assert all(attribute(m, "rejectReason") == "Avatar not found" for m in parked)


def test_reused_event_id_on_another_users_avatar_is_still_rejected(env):
    deps = dependencies.get_deps()
    bob_avatar = ready_avatar(deps.dynamodb, "bob", new_project(deps.dynamodb, "bob"))
    first = event("bob", bob_avatar)
    consume(env["client"], first)
    replay_elsewhere = dict(first, avatarId=env["a1"])   # same user+eventId, alice's avatar

    consume(env["client"], replay_elsewhere)

    assert usage_count("alice", env["a1"]) == 0 and usage_count("bob", bob_avatar) == 1
    assert [attribute(m, "rejectCode") for m in dlq(env)] == ["not_found"]


def test_mixed_batch_parks_bad_records_and_records_the_rest(env):
    good = [event("alice", env["a1"]), event("alice", env["a2"]), event("alice", env["a1"], appId="video-gen",
                                                                          appName="Video Generator")]
    future = (clock.now() + timedelta(minutes=30)).isoformat()
    bad = {
        "not json": '{"eventId": "x", ',
        "not an object": '"hello"',
        "missing fields": body({"eventId": "e-1", "userId": "alice"}).decode(),
        "far future": body(event("alice", env["a1"], occurredAt=future)).decode(),
    }
    result = consume(env["client"], good[0], bad["not json"], good[1], bad["not an object"], good[0],
                     bad["missing fields"], good[2], bad["far future"])

    assert result == {"batchItemFailures": []}
    assert (usage_count("alice", env["a1"]), usage_count("alice", env["a2"])) == (2, 1)
    assert stats(env["client"])["totalUsage"] == 3
    parked = {m["Body"]: m for m in dlq(env)}
    assert set(parked) == set(bad.values())
    assert attribute(parked[bad["not json"]], "rejectCode") == "bad_json"
    for name in ("not an object", "missing fields", "far future"):
        assert attribute(parked[bad[name]], "rejectCode") == "invalid_event", name
    assert "occurredAt" in attribute(parked[bad["far future"]], "rejectReason")
    assert "appId" in attribute(parked[bad["missing fields"]], "rejectReason")


def test_unreachable_dlq_fails_only_the_rejected_record(env, monkeypatch):
    """A rejection that cannot be parked is retried by SQS (then dead-lettered by the redrive policy)
    rather than lost; the good records of the batch are still recorded and not repeated."""
    monkeypatch.setenv("USAGE_EVENTS_DLQ_URL", env["aws"]["UsageEventsDlqUrl"] + "-missing")
    dependencies.reset()
    good = event("alice", env["a1"])
    sqs_event = env["client"].events.generate_sqs_event(
        queue_name=USAGE_EVENTS_QUEUE, message_bodies=[body(good).decode(), "not json"])
    bad_id = sqs_event["Records"][1]["messageId"]

    result = env["client"].lambda_.invoke("usage_worker", sqs_event).payload

    assert result == {"batchItemFailures": [{"itemIdentifier": bad_id}]}
    assert usage_count("alice", env["a1"]) == 1


def test_avatar_that_is_not_ready_is_rejected(env):
    pending = avatars.new_avatar(user_id="alice", project_id=env["project"], avatar_id="ava_pending", name="P",
                                 source_type="uploaded", status="processing", fields={})
    pending.save()

    assert consume(env["client"], event("alice", "ava_pending")) == {"batchItemFailures": []}

    assert usage_count("alice", "ava_pending") == 0
    assert stats(env["client"])["totalUsage"] == 0
    assert [attribute(m, "rejectCode") for m in dlq(env)] == ["avatar_not_ready"]


def test_out_of_order_events_keep_the_latest_last_used_at(env):
    now = clock.now()
    newer = event("alice", env["a1"], occurredAt=clock.iso(now), appName="Pose Gen v2")
    older = event("alice", env["a1"], occurredAt=clock.iso(now - timedelta(hours=1)), appName="Pose Gen v1")

    consume(env["client"], newer)
    consume(env["client"], older)

    avatar = avatars.get_avatar("alice", env["a1"])
    assert (avatar.usage_count, avatar.last_used_at) == (2, newer["occurredAt"])
    h = history(env["client"], env["a1"])
    assert [i["eventId"] for i in h["items"]] == [newer["eventId"], older["eventId"]]
    assert h["summary"] == [{"appId": "pose-generator", "appName": "Pose Gen v2", "count": 2,
                             "lastUsedAt": newer["occurredAt"]}]
    assert stats(env["client"])["usageByApp"][0]["lastUsedAt"] == newer["occurredAt"]


# ---- HTTP report ----------------------------------------------------------------------------------

def post_usage(client, avatar_id, data, user="alice"):
    return client.http.post(f"{PREFIX}/avatars/{avatar_id}/usage", headers=auth(user), body=body(data))


def http_event(**overrides):
    data = {"eventId": "evt-http-1", "appId": "pose-generator", "appName": "Pose Generator",
            "action": "pose.generated"}
    data.update(overrides)
    return data


def test_post_usage_records_once_then_answers_duplicate(env):
    first = post_usage(env["client"], env["a1"], http_event())
    again = post_usage(env["client"], env["a1"], http_event())

    assert first.status_code == 201, first.body
    assert first.json_body["status"] == "recorded" and first.json_body["eventId"] == "evt-http-1"
    assert first.json_body["recordedAt"] and first.json_body["avatarId"] == env["a1"]
    assert again.status_code == 200 and again.json_body["status"] == "duplicate"
    assert usage_count("alice", env["a1"]) == 1
    assert stats(env["client"])["totalUsage"] == 1


def test_post_usage_and_queue_share_one_event_id_space(env):
    e = event("alice", env["a1"])
    consume(env["client"], e)

    resp = post_usage(env["client"], env["a1"], http_event(eventId=e["eventId"]))

    assert resp.status_code == 200 and resp.json_body["status"] == "duplicate"
    assert usage_count("alice", env["a1"]) == 1


def test_post_usage_without_event_id_counts_each_request(env):
    data = http_event(eventId=None, occurredAt=None)
    ids = {post_usage(env["client"], env["a1"], data).json_body["eventId"] for _ in range(2)}

    assert len(ids) == 2
    assert usage_count("alice", env["a1"]) == 2


@pytest.mark.parametrize("data", [
    http_event(userId="bob"),
    http_event(avatarId="ava_other"),
    http_event(appId="Not A Slug"),
    http_event(metadata={f"k{i}": "x" * 200 for i in range(11)}),
    http_event(occurredAt="2099-01-01T00:00:00Z"),
    {"eventId": "e"},
], ids=["userId in body", "avatarId in body", "bad appId", "metadata too big", "far future", "missing fields"])
def test_post_usage_rejects_bad_input_and_records_nothing(env, data):
    resp = post_usage(env["client"], env["a1"], data)

    assert resp.status_code == 400, resp.body
    assert resp.json_body["error"]["code"] == "validation_error"
    assert usage_count("alice", env["a1"]) == 0


def test_post_usage_on_avatar_that_is_not_ready_is_409(env):
    from chalicelib import ids

    wip = ids.new_id("ava")
    avatars.new_avatar(user_id="alice", project_id=env["project"], avatar_id=wip, name="W",
                       source_type="uploaded", status="uploading", fields={}).save()

    resp = post_usage(env["client"], wip, http_event())

    assert resp.status_code == 409 and resp.json_body["error"]["code"] == "avatar_not_ready"
    assert stats(env["client"])["totalUsage"] == 0


def test_other_users_avatar_is_404_on_usage_routes(env):
    consume(env["client"], event("alice", env["a1"]))

    posted = post_usage(env["client"], env["a1"], http_event(eventId="evt-bob"), user="bob")
    read = env["client"].http.get(f"{PREFIX}/avatars/{env['a1']}/usage-history", headers=auth("bob"))
    missing = post_usage(env["client"], "ava_does_not_exist", http_event(), user="alice")
    weird = post_usage(env["client"], "ava%23x", http_event(), user="alice")

    for resp in (posted, read, missing, weird):
        assert resp.status_code == 404, resp.body
        assert resp.json_body["error"]["code"] == "not_found"
    assert usage_count("alice", env["a1"]) == 1
    assert stats(env["client"], "bob")["totalUsage"] == 0
    assert dlq(env) == []  # HTTP rejections answer the caller; they are not parked


# ---- reads ----------------------------------------------------------------------------------------

def test_history_is_newest_first_paginated_with_summary_by_app(env):
    start = clock.now() - timedelta(hours=3)
    sent = []
    for i in range(25):
        app = ("pose-generator", "Pose Generator") if i % 3 else ("video-generator", "Video Generator")
        sent.append(event("alice", env["a1"], appId=app[0], appName=app[1],
                          occurredAt=clock.iso(start + timedelta(minutes=i))))
    for i in range(0, 25, 10):
        assert consume(env["client"], *sent[i:i + 10]) == {"batchItemFailures": []}

    seen, cursor, summaries = [], None, []
    while True:
        page = history(env["client"], env["a1"], query="?limit=10" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["items"]) <= 10
        seen += page["items"]
        summaries.append(page["summary"])
        cursor = page["nextCursor"]
        if not cursor:
            break
        assert "U#" not in cursor
    assert [i["eventId"] for i in seen] == [e["eventId"] for e in reversed(sent)]
    video = [e for e in sent if e["appId"] == "video-generator"]
    pose = [e for e in sent if e["appId"] == "pose-generator"]
    assert summaries[0] == [
        {"appId": "pose-generator", "appName": "Pose Generator", "count": len(pose),
         "lastUsedAt": pose[-1]["occurredAt"]},
        {"appId": "video-generator", "appName": "Video Generator", "count": len(video),
         "lastUsedAt": video[-1]["occurredAt"]},
    ]
    assert all(s == summaries[0] for s in summaries)


def test_history_cursor_is_bound_to_user_and_avatar(env):
    consume(env["client"], *[event("alice", env["a1"]) for _ in range(3)])
    cursor = history(env["client"], env["a1"], query="?limit=1")["nextCursor"]
    assert cursor

    other_avatar = env["client"].http.get(f"{PREFIX}/avatars/{env['a2']}/usage-history?limit=1&cursor={cursor}",
                                          headers=auth())
    assert other_avatar.status_code == 400 and other_avatar.json_body["error"]["code"] == "validation_error"


def test_history_of_unused_avatar_is_empty(env):
    assert history(env["client"], env["a2"]) == {"items": [], "nextCursor": None, "summary": []}


def test_stats_numbers(env):
    deps = dependencies.get_deps()
    second = new_project(deps.dynamodb, "alice", "Second")
    ready_avatar(deps.dynamodb, "alice", second, source_type="uploaded")
    ready_avatar(deps.dynamodb, "alice", second, source_type="text_to_image")
    ready_avatar(deps.dynamodb, "alice", second, source_type="preset")
    today = clock.now()
    UserDayModel(user_pk("alice"), clock.day_key(today - timedelta(days=6)), uploads=2).save()   # in the window
    UserDayModel(user_pk("alice"), clock.day_key(today - timedelta(days=7)), uploads=50).save()  # just outside
    consume(env["client"], *[event("alice", env["a1"]) for _ in range(5)],
            event("alice", env["a2"], appId="video-gen", appName="Video"),
            event("alice", env["a2"], appId="video-gen", appName="Video"))

    s = stats(env["client"])

    assert s == {
        "totalAvatars": 5, "totalProjects": 2, "recentUploads": 3 + 2, "totalUsage": 7,
        "averageUsagePerAvatar": 1.4,
        "bySourceType": {"uploaded": 3, "text_to_image": 1, "preset": 1},
        "usageByApp": [
            {"appId": "pose-generator", "appName": "Pose Generator", "count": 5, "lastUsedAt": s["usageByApp"][0]["lastUsedAt"]},
            {"appId": "video-gen", "appName": "Video", "count": 2, "lastUsedAt": s["usageByApp"][1]["lastUsedAt"]},
        ],
        "activeGenerations": 0, "generationsToday": 0,
    }


def test_stats_of_a_new_user_are_zero(usage_aws, client):
    s = stats(client, "newcomer")

    assert s == {"totalAvatars": 0, "totalProjects": 0, "recentUploads": 0, "totalUsage": 0,
                 "averageUsagePerAvatar": 0, "bySourceType": {"uploaded": 0, "text_to_image": 0, "preset": 0},
                 "usageByApp": [], "activeGenerations": 0, "generationsToday": 0}


def test_stats_average_is_rounded_to_two_decimals(env):
    deps = dependencies.get_deps()
    ready_avatar(deps.dynamodb, "alice", env["project"])
    consume(env["client"], event("alice", env["a1"]), event("alice", env["a2"]))

    assert stats(env["client"])["averageUsagePerAvatar"] == 0.67


# ---- concurrency ----------------------------------------------------------------------------------

def conflicting_connection(conflicts: int):
    """A real PynamoDB connection whose next `conflicts` transactions DynamoDB cancels with
    TransactionConflict, as it does when concurrent consumers update the same user's counters.
    The cancellation comes from botocore's own call path (a `before-call` answer), so the client
    parses it exactly as it parses DynamoDB's."""
    import json as json_

    from botocore.awsrequest import AWSResponse
    from pynamodb.connection import Connection

    class ConflictingConnection(Connection):
        def __init__(self) -> None:
            super().__init__(region="us-east-1")
            self.conflicts, self.transactions = conflicts, 0
            self.client.meta.events.register_first("before-call.dynamodb.TransactWriteItems", self._answer)

        def _answer(self, params, **_):
            self.transactions += 1
            if not self.conflicts:
                return None
            self.conflicts -= 1
            size = len(json_.loads(params["body"])["TransactItems"])
            reasons = [{"Code": "None"}] * (size - 1) + [{"Code": "TransactionConflict",
                                                          "Message": "Transaction is ongoing"}]
            parsed = {"Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                      "CancellationReasons": reasons, "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse("https://dynamodb", 400, {}, None), parsed

    return ConflictingConnection()


def test_transaction_conflicts_are_retried_in_place(env):
    from chalicelib.usage import service as usage

    connection = conflicting_connection(2)
    outcome = usage.record_usage(connection, usage.parse_event(body(event("alice", env["a1"]))))

    assert outcome.status == "recorded" and connection.transactions == 3
    assert usage_count("alice", env["a1"]) == 1 and stats(env["client"])["totalUsage"] == 1


def test_lasting_conflict_fails_the_record_for_redelivery(env):
    from chalicelib.usage import service as usage
    from chalicelib.errors import DependencyError

    connection = conflicting_connection(100)
    with pytest.raises(DependencyError):
        usage.record_usage(connection, usage.parse_event(body(event("alice", env["a1"]))))

    assert connection.transactions == 5  # bounded: then SQS redelivers the record
    assert usage_count("alice", env["a1"]) == 0


# ---- issue 32: Idempotency-Key when there is no eventId ------------------------------------------------

def post_with_key(client, avatar_id, data, key, user="alice"):
    return client.http.post(f"{PREFIX}/avatars/{avatar_id}/usage", headers={**auth(user), "Idempotency-Key": key},
                            body=body(data))


def test_post_usage_retried_with_the_same_idempotency_key_counts_once(env):
    # GIVEN a report with no eventId (and no occurredAt: each retry is stamped anew)
    data = http_event(eventId=None, occurredAt=None)

    # WHEN the client retries it with the same Idempotency-Key, then reports another use with a new key
    first = post_with_key(env["client"], env["a1"], data, "use-1")
    retry = post_with_key(env["client"], env["a1"], data, "use-1")
    other = post_with_key(env["client"], env["a1"], data, "use-2")

    # THEN the retry is the same use (200 duplicate, same eventId); the new key is a new use
    assert (first.status_code, retry.status_code, other.status_code) == (201, 200, 201)
    assert retry.json_body["status"] == "duplicate" and retry.json_body["eventId"] == first.json_body["eventId"]
    assert other.json_body["eventId"] != first.json_body["eventId"]
    assert usage_count("alice", env["a1"]) == 2 and stats(env["client"])["totalUsage"] == 2
    assert len(history(env["client"], env["a1"])["items"]) == 2


def test_idempotency_key_is_per_app_and_an_event_id_takes_precedence(env):
    data = http_event(eventId=None)
    assert post_with_key(env["client"], env["a1"], data, "k").status_code == 201
    # another app may use the same key for its own use: dedupe is per (user, app, eventId)
    assert post_with_key(env["client"], env["a1"], http_event(eventId=None, appId="video-generator"),
                         "k").status_code == 201
    # with an eventId, the eventId names the use and the header changes nothing
    assert post_with_key(env["client"], env["a1"], http_event(eventId="evt-x"), "k").status_code == 201
    assert post_with_key(env["client"], env["a1"], http_event(eventId="evt-x"), "other").status_code == 200
    assert usage_count("alice", env["a1"]) == 3


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "ünï"])
def test_post_usage_with_a_bad_idempotency_key_is_400_and_records_nothing(env, key):
    resp = post_with_key(env["client"], env["a1"], http_event(eventId=None), key)

    assert resp.status_code == 400, resp.body
    assert set(resp.json_body["error"]) >= {"code", "message", "details"}
    assert usage_count("alice", env["a1"]) == 0


# ---- issue 32: per-batch aggregation keeps exactly-once per event --------------------------------------

def test_a_batch_of_one_user_is_one_transaction_and_a_redelivered_batch_changes_nothing(env):
    from tests.support.ddb_calls import DynamoDBCalls

    # GIVEN a batch of 10 events: 7 on one avatar over two apps, 3 on the other avatar
    batch = ([event("alice", env["a1"], appId=f"app-{n % 2}", appName=f"App {n % 2}") for n in range(7)]
             + [event("alice", env["a2"]) for _ in range(3)])

    # WHEN the worker takes it, and then SQS delivers the same batch again
    with DynamoDBCalls() as calls:
        assert consume(env["client"], *batch) == {"batchItemFailures": []}
    assert consume(env["client"], *batch) == {"batchItemFailures": []}

    # THEN one transaction (one user) wrote each counter once for all its events; every event has its
    # own history row; the redelivery counted nothing again
    assert calls.by_operation() == {"TransactWriteItems": 1}
    assert usage_count("alice", env["a1"]) == 7 and usage_count("alice", env["a2"]) == 3
    assert len(history(env["client"], env["a1"])["items"]) == 7
    assert {a["appId"]: a["count"] for a in history(env["client"], env["a1"])["summary"]} == {"app-0": 4, "app-1": 3}
    assert stats(env["client"])["totalUsage"] == 10


def test_a_batch_mixing_recorded_and_new_events_counts_only_the_new_ones(env):
    old = [event("alice", env["a1"]) for _ in range(3)]
    consume(env["client"], *old)

    new = [event("alice", env["a1"]) for _ in range(4)]
    assert consume(env["client"], *old, *new, new[0]) == {"batchItemFailures": []}

    assert usage_count("alice", env["a1"]) == 7 and stats(env["client"])["totalUsage"] == 7
    assert len(history(env["client"], env["a1"])["items"]) == 7


def test_a_group_on_another_users_avatar_is_rejected_while_the_rest_of_the_batch_is_recorded(env):
    deps = dependencies.get_deps()
    bobs = ready_avatar(deps.dynamodb, "bob", new_project(deps.dynamodb, "bob"))
    batch = [event("alice", env["a1"]), event("alice", bobs), event("alice", bobs), event("alice", env["a1"])]

    assert consume(env["client"], *batch) == {"batchItemFailures": []}

    assert usage_count("alice", env["a1"]) == 2 and usage_count("bob", bobs) == 0
    assert sorted(attribute(m, "rejectCode") for m in dlq(env)) == ["not_found", "not_found"]


from hypothesis import HealthCheck, Phase, given, settings as hsettings, strategies as st  # noqa: E402


@hsettings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.generate],  # moto is slow: no shrink
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 5)), min_size=1, max_size=8),
       cuts=st.lists(st.integers(1, 10), min_size=1, max_size=4), replays=st.integers(0, 3))
def test_property_counters_equal_distinct_events_however_batches_are_cut_and_redelivered(env, plan, cuts, replays):
    """Invariant: after any sequence of batches (events shared between batches, repeated within one,
    whole batches redelivered), each avatar's usageCount, its history rows, each app's count and the
    user's totalUsage equal the number of DISTINCT (app, eventId) events that reached it."""
    import uuid

    deps = dependencies.get_deps()
    user = f"p-{uuid.uuid4().hex[:10]}"  # a fresh user per example: no state to reset
    project = new_project(deps.dynamodb, user)
    avatars_ = [ready_avatar(deps.dynamodb, user, project) for _ in range(3)]
    # one body per (avatar, app, n): the same eventId always names the same event (an id is never
    # reused on another avatar: which avatar would win such a reuse is unspecified)
    bodies = [event(user, avatars_[a], eventId=f"e{a}-{i}", appId=f"app-{p}", appName=f"App {p}")
              for a, p, i in plan]
    counted = {(b["avatarId"], b["appId"], b["eventId"]) for b in bodies}

    batches, start = [], 0
    for cut in cuts * 12:
        if start >= len(bodies):
            break
        batches.append(bodies[start:start + cut])
        start += cut
    for batch in batches + batches[:replays]:
        assert consume(env["client"], *batch) == {"batchItemFailures": []}

    for aid in avatars_:
        mine = [c for c in counted if c[0] == aid]
        assert usage_count(user, aid) == len(mine)
        if mine:
            assert len(history(env["client"], aid, user=user, query="?limit=100")["items"]) == len(mine)
    assert stats(env["client"], user)["totalUsage"] == len(counted)


def test_an_avatar_that_is_not_ready_is_left_out_of_its_users_batch_and_the_rest_recorded(env):
    from chalicelib.aws.models import META, AvatarModel, avatar_pk

    AvatarModel(avatar_pk("alice", env["a2"]), META).update(actions=[AvatarModel.status.set("processing")])
    batch = [event("alice", env["a1"]), event("alice", env["a2"]), event("alice", env["a1"])]

    assert consume(env["client"], *batch) == {"batchItemFailures": []}

    assert usage_count("alice", env["a1"]) == 2 and usage_count("alice", env["a2"]) == 0
    assert stats(env["client"])["totalUsage"] == 2
    assert [attribute(m, "rejectCode") for m in dlq(env)] == ["avatar_not_ready"]


# ---- issue 32: history in shards of its own; rows from before still read and deleted ----------------------

def old_row(user, aid, n):
    """A history row as written before issue 32: in the avatar's own partition."""
    from chalicelib.usage import service as usage
    from chalicelib.aws.models import UsageRecordModel, avatar_pk

    moment = f"2026-01-01T00:00:{n:02d}.000Z"
    UsageRecordModel(avatar_pk(user, aid), usage.record_sk(moment, "old-app", f"old-{n}"), event_id=f"old-{n}",
                     avatar_id=aid, app_id="old-app", app_name="Old", action="use", occurred_at=moment,
                     recorded_at=moment).save()


def test_a_batch_writes_no_history_row_in_the_avatars_own_partition(env):
    from tests.support.ddb_calls import DynamoDBCalls
    from chalicelib.aws.models import avatar_pk

    with DynamoDBCalls() as calls:
        consume(env["client"], *[event("alice", env["a1"]) for _ in range(10)])

    # THEN the avatar's partition gets its counters only (META, APP#): its USE# rows went to the shards
    puts = [op["Put"]["Item"] for body in calls.bodies for op in body.get("TransactItems", []) if "Put" in op]
    rows = [p for p in puts if p["SK"]["S"].startswith("USE#")]
    assert len(rows) == 10 and not any(p["PK"]["S"] == avatar_pk("alice", env["a1"]) for p in rows)
    assert {p["PK"]["S"].rsplit("#H#", 1)[0] for p in rows} == {avatar_pk("alice", env["a1"])}
    assert len({p["PK"]["S"] for p in rows}) > 1  # spread over the shards


def test_history_merges_old_and_sharded_rows_newest_first_across_pages_and_delete_removes_both(env):
    # GIVEN 3 rows from before issue 32 (older) and 7 new ones
    for n in range(3):
        old_row("alice", env["a1"], n)
    consume(env["client"], *[event("alice", env["a1"]) for _ in range(7)])

    # WHEN the history is read 4 at a time
    seen, query = [], "?limit=4"
    for _ in range(5):
        page = history(env["client"], env["a1"], query=query)
        seen += page["items"]
        if not page["nextCursor"]:
            break
        query = f"?limit=4&cursor={page['nextCursor']}"

    # THEN every row comes once, newest first, the old ones last
    assert len(seen) == 10 and len({(r["appId"], r["eventId"]) for r in seen}) == 10
    assert [r["occurredAt"] for r in seen] == sorted((r["occurredAt"] for r in seen), reverse=True)
    assert [r["eventId"] for r in seen[-3:]] == ["old-2", "old-1", "old-0"]

    # AND deleting the avatar removes the rows of both layouts
    from chalicelib.avatars import store as avatars_store
    from chalicelib.aws.models import UsageRecordModel, history_pks

    resp = env["client"].http.delete(f"{PREFIX}/avatars/{env['a1']}", headers=auth("alice"))
    assert resp.status_code in (200, 202, 204), resp.body
    avatars_store.delete_history("alice", env["a1"])  # (what the delete's last step runs; idempotent)
    assert all(UsageRecordModel.count(pk, UsageRecordModel.sk.startswith("USE#")) == 0
               for pk in history_pks("alice", env["a1"]))
