"""Usage events through the embedded local stack: apps send to the real queue with boto3, the feeder
runs the usage worker as Lambda's event source mapping would, and the API reads the results."""
from __future__ import annotations

import json
import random
import time
import uuid
from datetime import timedelta

import pytest
import requests

from chalicelib import clock
from tests.support.usage import (
    attribute,
    domain_on_stack,
    event,
    expected_effects,
    new_project,
    queue_depth,
    ready_avatar,
    send_batch,
    take_all,
)

SETTLE_WITHIN = 90.0
APPS = [("pose-generator", "Pose Generator"), ("video-generator", "Video Generator"), ("story-maker", "Story Maker")]


@pytest.fixture
def queues(local_stack):
    sqs = local_stack.client("sqs")
    out = {"sqs": sqs, "queue": local_stack.outputs["UsageEventsQueueUrl"],
           "dlq": local_stack.outputs["UsageEventsDlqUrl"]}
    take_all(sqs, out["dlq"])  # start from an empty DLQ: this test accounts for everything in it
    return out


def seed_user(local_stack, n_avatars: int) -> dict:
    user = f"use-{uuid.uuid4().hex[:10]}"
    with domain_on_stack(local_stack.outputs, local_stack.jwt_secret) as deps:
        project = new_project(deps.dynamodb, user)
        avatar_ids = [ready_avatar(deps.dynamodb, user, project, name=f"A{i}") for i in range(n_avatars)]
    return {"id": user, "project": project, "avatars": avatar_ids,
            "headers": {"Authorization": f"Bearer {local_stack.token(user)}"}}


def get(local_stack, user, path):
    resp = requests.get(local_stack.api(path), headers=user["headers"], timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_until(check, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def full_history(local_stack, user, avatar_id) -> tuple[list[dict], list[dict]]:
    items, cursor, summary = [], None, None
    while True:
        page = get(local_stack, user, f"/avatars/{avatar_id}/usage-history?limit=100"
                   + (f"&cursor={cursor}" if cursor else ""))
        items += page["items"]
        summary = summary if summary is not None else page["summary"]
        cursor = page["nextCursor"]
        if not cursor:
            return items, summary


def test_500_events_with_duplicates_and_malformed_leave_exact_counts(local_stack, queues):
    rng = random.Random(5)
    user = seed_user(local_stack, 10)
    now = clock.now()
    valid = []
    for i in range(500):
        app_id, app_name = rng.choice(APPS)
        # Spread over the last hour and sent shuffled: lastUsedAt must still end at the maximum.
        valid.append(event(user["id"], rng.choice(user["avatars"]), appId=app_id, appName=app_name,
                           occurredAt=clock.iso(now - timedelta(seconds=rng.randint(0, 3600))),
                           metadata={"i": i}))
    duplicates = rng.sample(valid, 50)
    malformed = [
        f'{{"eventId": "bad-json-{uuid.uuid4().hex}", ',
        json.dumps({"eventId": f"missing-{uuid.uuid4().hex}", "userId": user["id"]}),
        json.dumps(event(user["id"], user["avatars"][0], appId="Not A Slug")),
        json.dumps(event(user["id"], user["avatars"][0], occurredAt="2099-01-01T00:00:00Z")),
        json.dumps(event(user["id"], user["avatars"][0], metadata={"nested": {"no": 1}})),
    ]
    messages = [json.dumps(e) for e in valid + duplicates] + malformed
    rng.shuffle(messages)

    started = time.monotonic()
    assert send_batch(queues["sqs"], queues["queue"], messages) == 555

    def settled():
        stats = get(local_stack, user, "/stats")
        return stats if stats["totalUsage"] == 500 and queue_depth(queues["sqs"], queues["queue"]) == 0 else None

    stats = wait_until(settled, SETTLE_WITHIN)
    print(f"\n555 messages settled in {time.monotonic() - started:.1f}s")
    assert stats, f"not settled within {SETTLE_WITHIN}s: {get(local_stack, user, '/stats')}"
    parked = take_all(queues["sqs"], queues["dlq"], settle=2.0)  # and nothing arrives late

    want = expected_effects(valid)
    assert stats["totalUsage"] == 500 and stats["totalAvatars"] == 10
    assert stats["averageUsagePerAvatar"] == 50.0
    assert {a["appId"]: (a["count"], a["lastUsedAt"], a["appName"]) for a in stats["usageByApp"]} == \
        {k: (v["count"], v["lastUsedAt"], v["appName"]) for k, v in want["apps"].items()}
    for avatar_id in user["avatars"]:
        exp = want["avatars"].get(avatar_id, {"count": 0, "lastUsedAt": None, "apps": {}})
        avatar = get(local_stack, user, f"/avatars/{avatar_id}")
        assert (avatar["usageCount"], avatar["lastUsedAt"]) == (exp["count"], exp["lastUsedAt"]), avatar_id
        items, summary = full_history(local_stack, user, avatar_id)
        assert len(items) == exp["count"] and len({i["eventId"] for i in items}) == exp["count"]
        assert [i["occurredAt"] for i in items] == sorted((i["occurredAt"] for i in items), reverse=True)
        assert {s["appId"]: (s["count"], s["lastUsedAt"], s["appName"]) for s in summary} == \
            {k: (v["count"], v["lastUsedAt"], v["appName"]) for k, v in exp["apps"].items()}

    assert sorted(m["Body"] for m in parked) == sorted(malformed)
    assert {attribute(m, "rejectCode") for m in parked} == {"bad_json", "invalid_event"}
    assert all(attribute(m, "rejectReason") for m in parked)


def test_event_naming_another_users_avatar_changes_nothing(local_stack, queues):
    alice, bob = seed_user(local_stack, 1), seed_user(local_stack, 1)
    alice_avatar, bob_avatar = alice["avatars"][0], bob["avatars"][0]
    stolen = [event(bob["id"], alice_avatar), event(alice["id"], bob_avatar)]
    control = event(alice["id"], alice_avatar)  # sent after them: when it shows, they were handled

    send_batch(queues["sqs"], queues["queue"], stolen)
    send_batch(queues["sqs"], queues["queue"], [control])

    assert wait_until(lambda: get(local_stack, alice, "/stats")["totalUsage"] == 1, 30.0)
    parked = take_all(queues["sqs"], queues["dlq"], settle=2.0)
    assert sorted(m["Body"] for m in parked) == sorted(json.dumps(e) for e in stolen)
    assert [attribute(m, "rejectCode") for m in parked] == ["not_found", "not_found"]
    assert get(local_stack, alice, f"/avatars/{alice_avatar}")["usageCount"] == 1
    assert get(local_stack, bob, f"/avatars/{bob_avatar}")["usageCount"] == 0
    assert get(local_stack, bob, "/stats")["totalUsage"] == 0
    assert get(local_stack, bob, f"/avatars/{bob_avatar}/usage-history") == {"items": [], "nextCursor": None,
                                                                             "summary": []}
    assert [i["eventId"] for i in get(local_stack, alice, f"/avatars/{alice_avatar}/usage-history")["items"]] == \
        [control["eventId"]]


def test_http_report_over_the_stack_is_recorded_once(local_stack):
    user = seed_user(local_stack, 1)
    url = local_stack.api(f"/avatars/{user['avatars'][0]}/usage")
    data = {"eventId": f"http-{uuid.uuid4().hex}", "appId": "pose-generator", "appName": "Pose Generator",
            "action": "pose.generated"}

    first = requests.post(url, json=data, headers=user["headers"], timeout=10)
    again = requests.post(url, json=data, headers=user["headers"], timeout=10)
    foreign = requests.post(url, json=data, headers={"Authorization": f"Bearer {local_stack.token('intruder')}"},
                            timeout=10)

    assert (first.status_code, again.status_code, foreign.status_code) == (201, 200, 404)
    assert get(local_stack, user, "/stats")["totalUsage"] == 1
