"""Every API read makes a fixed number of DynamoDB calls, whatever the amount of data: the same
calls with 10 and with 5,000 projects, avatars and usage events (counted at botocore)."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from chalicelib import clock, dependencies, ids

from chalicelib.avatars import service as avatars
from chalicelib.aws.models import (
    STATS,
    AppUsageSummaryModel,
    AvatarDayUsageModel,
    AvatarModel,
    ProjectModel,
    UsageRecordModel,
    UserDayModel,
    UserStatsModel,
    avatar_days_pk,
    avatar_pk,
    project_sk,
    user_pk,
)
from tests.functional.conftest import PREFIX, auth, body
from tests.support.ddb_calls import DynamoDBCalls
from tests.support.usage import new_project, ready_avatar

USER = "alice"
APPS = 12

# The one answer for both sizes: this is the claim.
EXPECTED = {
    "GET /stats": ["BatchGetItem", "Query"],
    # the avatar, its history's 5 partitions (pre-issue-32 rows + 4 shards), the summary
    "GET /avatars/{id}/usage-history": ["GetItem"] + ["Query"] * 6,
    "GET /avatars/{id}/usage-history?cursor": ["GetItem"] + ["Query"] * 6,
    "GET /projects": ["Query"],
    "GET /projects/{id}": ["GetItem", "Query"],
    "GET /projects/{id}/avatars": ["GetItem", "Query"],
    # the project and both avatars in one BatchGetItem, then one Query per avatar on its daily counters
    "GET /projects/{id}/compare": ["BatchGetItem", "Query", "Query"],
}
# A filter can leave pages empty; the list then stops after 3 Queries and the cursor continues.
FILTERED = "GET /projects/{id}/avatars?sourceType=preset"
FILTERED_MAX = ["GetItem", "Query", "Query", "Query"]


def seed(connection, n: int) -> dict:
    """n projects, n ready avatars in one project, n usage events on one avatar (+ per-app counters),
    written with BatchWriteItem; counters set to what the writes would have made them."""
    project = new_project(connection, USER, "Big")
    used = ready_avatar(connection, USER, project, name="Used a lot")
    now = clock.now()
    iso = clock.iso(now)
    with ProjectModel.batch_write() as batch:
        for _ in range(n - 1):
            pid = ids.new_id("prj")
            batch.save(ProjectModel(user_pk(USER), project_sk(pid), id=pid, user_id=USER, name="p", avatar_count=0,
                                    created_at=iso, updated_at=iso))
    others = []
    with AvatarModel.batch_write() as batch:
        for _ in range(n - 1):
            aid = ids.new_id("ava")
            others.append(aid)
            batch.save(avatars.new_avatar(user_id=USER, project_id=project, avatar_id=aid, name="a",
                                          source_type="uploaded", status="ready", fields={},
                                          image_key=f"i/{aid}", thumbnail_key=f"t/{aid}"))
    with UsageRecordModel.batch_write() as batch:
        for i in range(n):
            moment = clock.iso(now - timedelta(seconds=i))
            eid = f"seed-{i}"
            batch.save(UsageRecordModel(avatar_pk(USER, used), f"USE#{moment}#{eid}", event_id=eid, avatar_id=used,
                                        app_id=f"app-{i % APPS}", app_name="App", action="use", occurred_at=moment,
                                        recorded_at=moment))
    with AppUsageSummaryModel.batch_write() as batch:
        for a in range(APPS):
            count = len(range(a, n, APPS))
            batch.save(AppUsageSummaryModel(avatar_pk(USER, used), f"APP#app-{a}", app_id=f"app-{a}",
                                            app_name="App", count=count, last_used_at=iso))
            batch.save(AppUsageSummaryModel(user_pk(USER), f"APPUSE#app-{a}", app_id=f"app-{a}",
                                            app_name="App", count=count, last_used_at=iso))
    with AvatarDayUsageModel.batch_write() as batch:  # up to 90 days × APPS apps of daily counters (compare)
        for i in range(min(n, 90 * APPS)):
            day = (now - timedelta(days=i // APPS)).strftime("%Y-%m-%d")
            batch.save(AvatarDayUsageModel(avatar_days_pk(USER, used), f"{day}#app-{i % APPS}", app_id=f"app-{i % APPS}",
                                           app_name="App", day=day, uses=1))
    with UserDayModel.batch_write() as batch:
        for day in clock.last_days(now, 7):
            batch.save(UserDayModel(user_pk(USER), day, uploads=n // 7))
    UserStatsModel(user_pk(USER), STATS, total_projects=n, total_avatars=n, avatars_uploaded=n, total_usage=n).save()
    ProjectModel(user_pk(USER), project_sk(project)).update(actions=[ProjectModel.avatar_count.set(n)])
    return {"project": project, "avatar": used, "other": others[0]}


def measure(client, seeded) -> dict[str, list[str]]:
    pid, aid = seeded["project"], seeded["avatar"]
    first_page = client.http.get(f"{PREFIX}/avatars/{aid}/usage-history?limit=5", headers=auth(USER)).json_body
    requests = {
        "GET /stats": ("get", f"{PREFIX}/stats", {}),
        "GET /avatars/{id}/usage-history": ("get", f"{PREFIX}/avatars/{aid}/usage-history", {}),
        "GET /avatars/{id}/usage-history?cursor":
            ("get", f"{PREFIX}/avatars/{aid}/usage-history?limit=5&cursor={first_page['nextCursor']}", {}),
        "GET /projects": ("get", f"{PREFIX}/projects", {}),
        "GET /projects/{id}": ("get", f"{PREFIX}/projects/{pid}", {}),
        "GET /projects/{id}/avatars": ("get", f"{PREFIX}/projects/{pid}/avatars", {}),
        "GET /projects/{id}/compare": ("get", f"{PREFIX}/projects/{pid}/compare?avatars={aid},{seeded['other']}&days=90", {}),
        FILTERED: ("get", f"{PREFIX}/projects/{pid}/avatars?sourceType=preset", {}),
    }
    seen = {}
    for name, (method, url, kwargs) in requests.items():
        with DynamoDBCalls() as calls:
            resp = getattr(client.http, method)(url, headers=auth(USER), **kwargs)
        assert resp.status_code == 200, (name, resp.status_code, resp.body)
        seen[name] = calls.names
    return seen


@pytest.mark.timeout(900)  # 5,000 items into moto: ~10 s alone, minutes on a loaded 2-core machine
@pytest.mark.parametrize("n", [10, 5000])
def test_api_reads_make_the_same_dynamodb_calls_for_10_and_5000_items(client, n):
    connection = dependencies.get_deps().dynamodb
    started = time.monotonic()
    seeded = seed(connection, n)
    seeded_in = time.monotonic() - started

    seen = measure(client, seeded)

    print(f"\nn={n}: seeded in {seeded_in:.1f}s; calls: {seen}")
    filtered = seen.pop(FILTERED)
    assert seen == EXPECTED
    assert filtered == (FILTERED_MAX if n > 100 else ["GetItem", "Query"])
    stats = client.http.get(f"{PREFIX}/stats", headers=auth(USER)).json_body
    assert stats["totalAvatars"] == n and stats["totalUsage"] == n  # the data really is that big
    history = client.http.get(f"{PREFIX}/avatars/{seeded['avatar']}/usage-history", headers=auth(USER)).json_body
    assert len(history["summary"]) == APPS and len(history["items"]) == min(20, n)
    assert (history["nextCursor"] is not None) == (n > 20)
    compared = client.http.get(f"{PREFIX}/projects/{seeded['project']}/compare?avatars={seeded['avatar']},"
                               f"{seeded['other']}&days=90", headers=auth(USER)).json_body
    assert compared["avatars"][0]["total"] == min(n, 90 * APPS) and not compared["avatars"][0]["truncated"]


def test_recording_an_event_is_one_transaction(client):
    """In order: one TransactWriteItems. A replay: one (cancelled). Out of order: two (see usage._write).
    Over HTTP each report first counts in the user's per-second window (one UpdateItem, usage.admit)."""
    seeded = seed(dependencies.get_deps().dynamodb, 10)
    url = f"{PREFIX}/avatars/{seeded['avatar']}/usage"
    late = {"eventId": "evt-late", "appId": "app-0", "appName": "App", "action": "use",
            "occurredAt": clock.iso(clock.now() - timedelta(days=1))}
    counts = []
    for data in ({"eventId": "evt-1", "appId": "app-0", "appName": "App", "action": "use"},
                 {"eventId": "evt-1", "appId": "app-0", "appName": "App", "action": "use"}, late):
        with DynamoDBCalls() as calls:
            resp = client.http.post(url, headers=auth(USER), body=body(data))
        assert resp.status_code in (200, 201), resp.body
        counts.append(calls.names)

    assert counts == [["UpdateItem", "TransactWriteItems"], ["UpdateItem", "TransactWriteItems"],
                      ["UpdateItem", "TransactWriteItems", "TransactWriteItems"]]


def test_counter_sees_calls_on_clients_created_while_counting(client):
    """Clients made after counting started (a rebound model, a new thread) are counted too."""
    from chalicelib.aws.models import ALL_MODELS

    for model in ALL_MODELS:  # as bind_models does when the endpoint changes
        model._connection = None
    with DynamoDBCalls() as calls:
        resp = client.http.get(f"{PREFIX}/stats", headers=auth(USER))
    assert resp.status_code == 200
    assert calls.names == EXPECTED["GET /stats"]
