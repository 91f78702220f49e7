"""Each race and hostile input the outside reviews found (issue 15), as a test that failed before its
fix: quotas with Idempotency-Keys, jobs with one owner, deletes racing workers and usage events,
purges that stall, inputs DynamoDB cannot store, and the weaker spots of auth and validation."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import boto3
import pytest

from chalicelib import clock, dependencies, ids

from chalicelib.avatars import service as avatars
from chalicelib.config import USAGE_EVENTS_QUEUE_ARN
from chalicelib.aws.models import (
    META,
    AppUsageSummaryModel,
    GenerationModel,
    UsageEventMarkerModel,
    UserStatsModel,
    avatar_pk,
    usage_event_pk,
    user_pk,
)
from tests.functional.conftest import PREFIX, SECRET, auth, body
from tests.support.generation import deliver
from tests.support.usage import event, new_project, ready_avatar, take_all

# generate_sqs_event wants a name: the placeholder ARN ends in the local queue's name.
USAGE_EVENTS_QUEUE = USAGE_EVENTS_QUEUE_ARN.rsplit(":", 1)[-1]

GEN = {"prompt": "a face", "name": "G", "width": 256, "height": 256}


@pytest.fixture
def env(aws, client, monkeypatch):
    def set_env(**values):
        for key, value in values.items():
            monkeypatch.setenv(key, str(value))
        dependencies.reset()
    monkeypatch.setenv("USAGE_EVENTS_DLQ_URL", aws["UsageEventsDlqUrl"])
    set_env(GENERATION_PROVIDER="offline", GENERATION_BACKOFF_SECONDS="0")
    set_env.client = client
    set_env.aws = aws
    return set_env


def project(client, user="alice") -> str:
    return client.http.post(f"{PREFIX}/projects", headers=auth(user), body=body({"name": "T"})).json_body["id"]


def generate(client, pid, key=None, user="alice", **fields):
    headers = {**auth(user), **({"Idempotency-Key": key} if key else {})}
    return client.http.post(f"{PREFIX}/projects/{pid}/avatars/generate", headers=headers,
                            body=body({**GEN, **fields}))


def objects(aws, prefix: str) -> list[str]:
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=aws["UploadBucket"], Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def stats(client, user="alice") -> dict:
    return client.http.get(f"{PREFIX}/stats", headers=auth(user)).json_body


# ---- 1. quotas read by name, with and without an Idempotency-Key --------------------------------------

@pytest.mark.parametrize("key", [None, "k-active"])
def test_active_limit_is_a_429_with_its_retry_after_with_or_without_a_key(env, key):
    env(GENERATION_ACTIVE_LIMIT=1)
    pid = project(env.client)
    assert generate(env.client, pid, key="first" if key else None).status_code == 202
    over = generate(env.client, pid, key=key, seed=2)
    assert over.status_code == 429, over.body
    assert over.json_body["error"]["details"]["kind"] == "active" and over.headers["Retry-After"] == "30"


@pytest.mark.parametrize("key", [None, "k-daily"])
def test_daily_limit_is_a_429_until_midnight_with_or_without_a_key(env, key):
    env(GENERATION_DAILY_LIMIT=1)
    pid = project(env.client)
    assert generate(env.client, pid).status_code == 202
    over = generate(env.client, pid, key=key, seed=2)
    assert over.status_code == 429, over.body
    assert over.json_body["error"]["details"]["kind"] == "daily"
    now = clock.now()
    to_midnight = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
    assert abs(int(over.headers["Retry-After"]) - to_midnight) <= 5


def test_the_loser_of_a_race_on_one_key_gets_the_first_generation_not_a_429(env, monkeypatch):
    from chalicelib.generation import requests as generation

    env(GENERATION_ACTIVE_LIMIT=1)
    pid = project(env.client)
    first = generate(env.client, pid, key="same")
    assert first.status_code == 202
    # The second request read the key before the first one committed: it finds nothing, then its
    # transaction fails on the key (and on the active limit, now full).
    real_replay, calls = generation._replay, []

    def replay_missing_the_first_time(*args):
        calls.append(args)
        return None if len(calls) == 1 else real_replay(*args)

    monkeypatch.setattr(generation, "_replay", replay_missing_the_first_time)
    second = generate(env.client, pid, key="same")
    assert second.status_code == 200, second.body
    assert second.json_body["id"] == first.json_body["id"] and len(calls) == 2


@pytest.mark.parametrize("failing", ["project", "daily", "active", "idempotency"])
def test_every_cancellation_reason_of_start_is_read_by_its_item(env, failing, monkeypatch):
    """Each condition of the start transaction, failed alone, gives its own answer."""
    from chalicelib.generation import requests as generation
    from chalicelib.errors import NotFoundError, QuotaExceededError
    from chalicelib.aws.models import IdempotencyKeyModel, UserDayModel

    deps = dependencies.get_deps()
    pid = project(env.client)
    settings = deps.settings
    if failing == "daily":
        UserDayModel(user_pk("alice"), clock.day_key(clock.now()), generations=settings.generation_daily_limit).save()
    if failing == "active":
        UserStatsModel(user_pk("alice")).update(
            actions=[UserStatsModel.active_generations.set(settings.generation_active_limit)])
    if failing == "idempotency":
        earlier = generation.start(deps.dynamodb, deps.sqs, settings, "alice", pid, dict(GEN), idempotency_key="x")
        real, reads = generation._replay, []
        # the race: the key appears between the request's read and its write
        monkeypatch.setattr(generation, "_replay", lambda *a: reads.append(a) or (real(*a) if len(reads) > 1 else None))
        again = generation.start(deps.dynamodb, deps.sqs, settings, "alice", pid, dict(GEN), idempotency_key="x")
        assert (again.created, again.generation.id) == (False, earlier.generation.id)
        return
    with pytest.raises((NotFoundError, QuotaExceededError)) as raised:
        generation.start(deps.dynamodb, deps.sqs, settings, "alice", "prj_" + "0" * 26 if failing == "project"
                         else pid, dict(GEN), idempotency_key="y")
    expected = {"project": NotFoundError, "daily": QuotaExceededError, "active": QuotaExceededError}[failing]
    assert isinstance(raised.value, expected)
    if failing != "project":
        assert raised.value.details["kind"] == failing
    assert not list(IdempotencyKeyModel.query(user_pk("alice"), IdempotencyKeyModel.sk.startswith("IDEM#")))


def test_transaction_reasons_come_back_under_the_names_of_their_items(env):
    """PynamoDB sends condition checks, deletes, puts, then updates; names survive any order."""
    from chalicelib.aws.db import Transaction, TransactionCancelled
    from chalicelib.aws.models import ProjectModel, project_sk

    deps = dependencies.get_deps()
    pid = project(env.client)
    with pytest.raises(TransactionCancelled) as raised:
        with Transaction(deps.dynamodb) as tx:
            tx.update("stats", UserStatsModel(user_pk("alice")), actions=[UserStatsModel.total_usage.add(1)],
                      condition=UserStatsModel.total_usage > 100)
            tx.condition_check("project", ProjectModel, user_pk("alice"), project_sk(pid),
                               condition=ProjectModel.pk.exists())
            tx.save("marker", UsageEventMarkerModel("U#alice#EVT#x", avatar_id="a", recorded_at="now"))
    assert raised.value.reasons == {"stats": "ConditionalCheckFailed"}
    assert stats(env.client)["totalUsage"] == 0


def test_an_idempotency_key_replayed_on_another_project_is_a_409(env):
    first, other = project(env.client), project(env.client)
    assert generate(env.client, first, key="k").status_code == 202
    again = generate(env.client, other, key="k")
    assert again.status_code == 409 and again.json_body["error"]["code"] == "idempotency_key_reused"
    missing = generate(env.client, "prj_" + "0" * 26, key="k")
    assert missing.status_code in (404, 409)


# ---- 2. one owner per job -----------------------------------------------------------------------

class SlowProvider:
    """The provider's side of a long job (a test double for the external image API): it records the
    job's lease while it works."""

    def __init__(self, seconds: float, gid: str):
        self.seconds, self.gid, self.leases, self.calls = seconds, gid, [], 0

    def generate(self, request):
        from tests.support import images

        self.calls += 1
        for _ in range(3):
            self.leases.append(int(GenerationModel.get(f"U#alice#G#{self.gid}", META, consistent_read=True).lease_until))
            time.sleep(self.seconds / 3)
        return images.png(64, 64)


def test_a_long_job_holds_one_lease_and_never_touches_its_message(env, monkeypatch):
    """No heartbeat: the lease outlasts the function's timeout, so it is written once by the claim,
    and the message keeps the queue's long visibility timeout for the whole run."""
    env(GENERATION_LEASE_SECONDS=30)
    pid = project(env.client)
    gid = generate(env.client, pid).json_body["id"]
    provider = SlowProvider(0.3, gid)
    deps = dependencies.get_deps()
    monkeypatch.setattr(type(deps), "provider", property(lambda self: provider))
    sqs, visibility_changes = deps.sqs, []

    class Watch:
        def __getattr__(self, name):
            return getattr(sqs, name)

        def change_message_visibility(self, **call):
            visibility_changes.append(call)
            return sqs.change_message_visibility(**call)

    monkeypatch.setattr(type(deps), "sqs", property(lambda self: Watch()))
    assert deliver("generation_worker") == 1
    assert provider.calls == 1 and len(set(provider.leases)) == 1
    assert visibility_changes == []
    done = env.client.http.get(f"{PREFIX}/generations/{gid}", headers=auth()).json_body
    assert done["status"] == "completed"


def test_a_claim_is_taken_over_only_after_its_lease_expires(env):
    from chalicelib.generation import jobs, requests

    pid = project(env.client)
    gid = generate(env.client, pid).json_body["id"]
    settings = dependencies.get_deps().settings
    first = jobs.claim(requests.get("alice", gid, consistent=True), settings)
    assert first is not None
    assert jobs.claim(requests.get("alice", gid, consistent=True), settings) is None
    GenerationModel(first.generation.pk, META).update(actions=[GenerationModel.lease_until.set(clock.epoch(clock.now()))])
    second = jobs.claim(requests.get("alice", gid, consistent=True), settings)  # leaseUntil == now: taken over
    assert second is not None and second.token != first.token
    assert not first.abandon() and second.abandon()


def test_the_lease_outlasts_the_generation_workers_timeout():
    from chalicelib.config import Settings
    from tests.support.infra import load_resources

    timeout = load_resources()["Resources"]["GenerationWorker"]["Properties"]["Timeout"]
    assert Settings().generation_lease_seconds > timeout


# ---- 3. a project deleted mid-generation leaves no file -----------------------------------------------

def test_a_project_deleted_while_its_avatar_is_generated_leaves_no_files(env, monkeypatch):
    pid = project(env.client)
    gid = generate(env.client, pid).json_body["id"]
    deps = dependencies.get_deps()
    offline = deps.provider

    class DeletingMidway:
        def generate(self, request):
            image = offline.generate(request)
            assert env.client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
            deliver("cleanup_worker")  # the purge runs while the worker still holds the job
            return image

    monkeypatch.setattr(type(deps), "provider", property(lambda self: DeletingMidway()))
    deliver("generation_worker")
    deliver("cleanup_worker")
    assert objects(env.aws, "images/alice/") == [] and objects(env.aws, "thumbs/alice/") == []
    assert env.client.http.get(f"{PREFIX}/generations/{gid}", headers=auth()).status_code == 404
    assert stats(env.client)["activeGenerations"] == 0


# ---- 4, 5. deletes and usage: counters stay exact -----------------------------------------------------

def use(client, aid, app, event_id):
    return client.http.post(f"{PREFIX}/avatars/{aid}/usage", headers=auth(),
                            body=body({"eventId": event_id, "appId": app, "appName": app, "action": "use"}))


def test_deleting_an_avatar_takes_its_uses_out_of_every_per_app_total(env):
    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    doomed, kept = ready_avatar(deps.dynamodb, "alice", pid), ready_avatar(deps.dynamodb, "alice", pid)
    for i, app in enumerate(["pose", "pose", "video"]):
        assert use(env.client, doomed, app, f"d{i}").status_code == 201
    assert use(env.client, kept, "pose", "k1").status_code == 201
    assert env.client.http.delete(f"{PREFIX}/avatars/{doomed}", headers=auth()).status_code == 204
    s = stats(env.client)
    assert s["totalUsage"] == 1 == sum(a["count"] for a in s["usageByApp"] if a["count"])
    assert {a["appId"]: a["count"] for a in s["usageByApp"]} == {"pose": 1, "video": 0}


def test_a_usage_event_landing_during_a_delete_leaves_no_rows_and_no_drift(env):
    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    aid = ready_avatar(deps.dynamodb, "alice", pid)
    stale = avatars.get_avatar("alice", aid, consistent=True)  # the delete read it…
    assert use(env.client, aid, "pose", "late").status_code == 201  # …then an event landed
    assert avatars.delete_avatar(deps.dynamodb, deps.storage, stale)
    assert list(AppUsageSummaryModel.query(avatar_pk("alice", aid))) == []  # no USE#, APP# or META left
    s = stats(env.client)
    assert s["totalUsage"] == 0 and all(a["count"] == 0 for a in s["usageByApp"])
    # and once it is being deleted, no event can land on it
    assert use(env.client, aid, "pose", "after").status_code == 404


# ---- 6. dedupe per app, with an expiry ----------------------------------------------------------------

def test_two_apps_may_use_the_same_event_id_and_markers_expire(env):
    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    aid = ready_avatar(deps.dynamodb, "alice", pid)
    assert use(env.client, aid, "pose", "evt-1").status_code == 201
    assert use(env.client, aid, "video", "evt-1").status_code == 201
    assert use(env.client, aid, "video", "evt-1").status_code == 200  # that one is a duplicate
    assert stats(env.client)["totalUsage"] == 2
    marker = UsageEventMarkerModel.get(usage_event_pk("alice", "pose", "evt-1"), "EVT")
    days = (int(marker.ttl) - clock.epoch(clock.now())) / 86400
    assert 29 < days <= 30


# ---- 7. purges in bounded steps, resumed by the sweeper -----------------------------------------------

def test_a_large_project_is_purged_in_bounded_steps(env):
    env(PURGE_BATCH_SIZE=2)
    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    made = [ready_avatar(deps.dynamodb, "alice", pid) for _ in range(5)]
    assert env.client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    assert deliver("cleanup_worker", rounds=1) == 1  # one step: 2 avatars, then the next step is queued
    remaining = [a for a in made if avatars.AvatarModel.count(avatar_pk("alice", a)) > 0]
    assert len(remaining) == 3
    assert deliver("cleanup_worker") == 2  # 2 avatars; then the last one and the tombstone
    assert all(avatars.AvatarModel.count(avatar_pk("alice", a)) == 0 for a in made)
    assert stats(env.client)["totalAvatars"] == 0


def test_a_purge_runs_as_one_chain_however_often_the_sweeper_and_duplicates_come(env):
    """Each step moves the tombstone's deadline on, so a sweep while the chain is alive starts no
    second chain; a duplicate of a step's message, or a message of a chain the sweeper replaced, runs nothing."""
    from chalicelib.housekeeping.sweeper import sweep
    from tests.support.generation import feeder

    env(PURGE_BATCH_SIZE=2)
    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    made = [ready_avatar(deps.dynamodb, "alice", pid) for _ in range(7)]
    assert env.client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    f = feeder()
    source = next(s for s in f.sources if s.name == "cleanup_worker")
    step0 = f.sqs.receive_message(QueueUrl=source.queue_url, MaxNumberOfMessages=1)["Messages"]
    f.invoke(source, step0)
    f.invoke(source, step0)  # a duplicate delivery of the same step
    later = clock.now() + timedelta(seconds=200)  # the grace period (300 s) counts from the last step
    assert sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=later, files=False).purges_resent == []
    queued = f.sqs.receive_message(QueueUrl=source.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(queued) == 1  # one chain: the duplicate queued no second next step
    for message in queued:
        f.sqs.change_message_visibility(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                        VisibilityTimeout=0)
    assert deliver("cleanup_worker") == 3  # 2 + 2 + the last one and the tombstone
    assert all(avatars.AvatarModel.count(avatar_pk("alice", a)) == 0 for a in made)


def test_a_purge_whose_message_was_lost_is_resent_by_the_sweeper(env, monkeypatch):
    from botocore.exceptions import ClientError

    from chalicelib.housekeeping.sweeper import sweep

    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    aid = ready_avatar(deps.dynamodb, "alice", pid)
    sqs = deps.sqs
    monkeypatch.setattr(type(deps), "sqs", property(lambda self: Refusing()))

    class Refusing:
        def send_message(self, **_):
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")

    assert env.client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    assert deliver("cleanup_worker") == 0  # the message never left
    report = sweep(deps.dynamodb, deps.storage, sqs, deps.settings, now=clock.now() + timedelta(minutes=10))
    assert report.purges_resent == [pid]
    assert deliver("cleanup_worker") == 1
    assert avatars.AvatarModel.count(avatar_pk("alice", aid)) == 0


# ---- 8. the DLQ handler never re-creates a purged job --------------------------------------------------

def test_a_dead_letter_for_a_purged_generation_writes_nothing(env, monkeypatch):
    from chalicelib.generation import jobs, requests as generation

    pid = project(env.client)
    gid = generate(env.client, pid).json_body["id"]
    stale = generation.get("alice", gid, consistent=True)
    GenerationModel(stale.pk, META).delete()  # purged between the DLQ handler's read and its write
    monkeypatch.setattr(GenerationModel, "get", classmethod(lambda cls, *a, **k: stale))
    jobs.dead_letter(dependencies.get_deps().dynamodb, "alice", gid)
    monkeypatch.undo()
    assert GenerationModel.count(stale.pk) == 0


# ---- 9. every upload ends ready or rejected -----------------------------------------------------------

def upload_request(client, pid, data: bytes, content_type="image/png"):
    created = client.http.post(f"{PREFIX}/projects/{pid}/avatars/upload", headers=auth(),
                               body=body({"name": "U", "contentType": content_type, "size": len(data)})).json_body
    return created


def test_a_decoder_crash_rejects_the_upload_as_corrupt(env, monkeypatch):
    from chalicelib.avatars import images
    from tests.support import images as img

    pid = project(env.client)
    data = img.png(32, 32)
    created = upload_request(env.client, pid, data)
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=env.aws["UploadBucket"],
                                                           Key=created["upload"]["fields"]["key"], Body=data)

    def crash(*args, **kwargs):
        raise TypeError("exif_transpose: unsupported operand")  # what a mutated EXIF block raised

    monkeypatch.setattr(images, "process_upload", crash)
    deliver("upload_worker")
    avatar = env.client.http.get(f"{PREFIX}/avatars/{created['avatar']['id']}", headers=auth()).json_body
    assert (avatar["status"], avatar["statusCode"]) == ("rejected", "corrupt") and avatar["statusReason"]
    assert objects(env.aws, "uploads/") == []


def test_an_upload_event_in_the_dlq_rejects_its_avatar(env):
    from tests.support import images as img

    pid = project(env.client)
    created = upload_request(env.client, pid, img.png(32, 32))
    key = created["upload"]["fields"]["key"]
    notification = {"Records": [{"eventName": "ObjectCreated:Post", "s3": {
        "bucket": {"name": env.aws["UploadBucket"]}, "object": {"key": key, "size": 10}}}]}
    boto3.client("sqs", region_name="us-east-1").send_message(QueueUrl=env.aws["UploadDlqUrl"],
                                                              MessageBody=json.dumps(notification))
    assert deliver("upload_dlq_worker") == 1
    avatar = env.client.http.get(f"{PREFIX}/avatars/{created['avatar']['id']}", headers=auth()).json_body
    assert (avatar["status"], avatar["statusCode"]) == ("rejected", "internal")


def test_an_upload_that_never_arrives_is_rejected_by_the_sweeper(env):
    from chalicelib.housekeeping.sweeper import sweep
    from tests.support import images as img

    pid = project(env.client)
    created = upload_request(env.client, pid, img.png(32, 32))
    deps = dependencies.get_deps()
    assert sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings).uploads_rejected == []  # not yet due
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(hours=1))
    assert report.uploads_rejected == [created["avatar"]["id"]]
    avatar = env.client.http.get(f"{PREFIX}/avatars/{created['avatar']['id']}", headers=auth()).json_body
    assert (avatar["status"], avatar["statusCode"]) == ("rejected", "not_received")


def test_a_queued_generation_waits_then_fails_as_queue_timeout_with_its_images_given_back(env):
    from chalicelib.housekeeping.sweeper import sweep

    pid = project(env.client)
    gid = generate(env.client, pid, numImages=2).json_body["id"]
    deps = dependencies.get_deps()
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(hours=5))
    assert report.generations_failed == []  # waiting is not failing
    assert env.client.http.get(f"{PREFIX}/generations/{gid}", headers=auth()).json_body["status"] == "pending"
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(hours=6, seconds=5))
    assert report.generations_failed == [gid]
    done = env.client.http.get(f"{PREFIX}/generations/{gid}", headers=auth()).json_body
    assert (done["status"], done["errorCode"]) == ("failed", "queue_timeout")
    assert stats(env.client)["activeGenerations"] == 0 and stats(env.client)["generationsToday"] == 0
    deliver("generation_worker")  # its message, delivered late, changes nothing
    assert env.client.http.get(f"{PREFIX}/generations/{gid}", headers=auth()).json_body["status"] == "failed"


def test_a_claimed_generation_past_its_running_deadline_is_failed_by_the_sweeper(env):
    from chalicelib.generation import jobs, requests
    from chalicelib.housekeeping.sweeper import sweep

    pid = project(env.client)
    gid = generate(env.client, pid).json_body["id"]
    deps = dependencies.get_deps()
    assert jobs.claim(requests.get("alice", gid, consistent=True), deps.settings) is not None  # then it died
    soon = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(minutes=30))
    assert soon.generations_failed == []
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(hours=1, seconds=5))
    assert report.generations_failed == [gid]
    done = env.client.http.get(f"{PREFIX}/generations/{gid}", headers=auth()).json_body
    assert (done["status"], done["errorCode"]) == ("failed", "timed_out") and "in time" in done["errorMessage"]
    assert stats(env.client)["activeGenerations"] == 0 and stats(env.client)["generationsToday"] == 0


def test_one_item_that_fails_does_not_stop_the_sweep(env, monkeypatch):
    from chalicelib.generation import jobs
    from chalicelib.housekeeping.sweeper import sweep

    pid = project(env.client)
    first = generate(env.client, pid).json_body["id"]
    second = generate(env.client, pid).json_body["id"]
    real, calls = jobs.expire, []

    def broken_once(connection, settings, generation, now):
        calls.append(generation.id)
        if len(calls) == 1:
            raise RuntimeError("a bad item")
        return real(connection, settings, generation, now)

    monkeypatch.setattr(jobs, "expire", broken_once)
    deps = dependencies.get_deps()
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(hours=7))
    assert len(report.errors) == 1 and len(report.generations_failed) == 1
    assert set(calls) == {first, second}
    assert report.counts()["errors"] == 1


def test_the_sweeper_removes_files_no_avatar_points_at(env):
    from chalicelib.housekeeping.sweeper import sweep
    from tests.support import images as img

    s3 = boto3.client("s3", region_name="us-east-1")
    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    aid = ready_avatar(deps.dynamodb, "alice", pid)
    kept = avatars.get_avatar("alice", aid).image_key
    for key in (kept, "images/alice/ava_gone.abc.png", "thumbs/alice/ava_gone.jpg"):
        s3.put_object(Bucket=env.aws["UploadBucket"], Key=key, Body=img.png(8, 8))
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(hours=2))
    assert sorted(report.files_removed) == ["images/alice/ava_gone.abc.png", "thumbs/alice/ava_gone.jpg"]
    assert objects(env.aws, "images/") == [kept]


# ---- 10, 11. inputs DynamoDB cannot store are a 4xx, and a coded DLQ message -----------------------

@pytest.mark.parametrize("bad", [{"occurredAt": "0001-01-01T00:00:00+01:00"}, {"metadata": {"tiny": 1e-200}}],
                         ids=["year 1", "1e-200"])
def test_unstorable_usage_input_is_400_over_http_and_a_coded_dlq_message_on_the_queue(env, bad):
    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    aid = ready_avatar(deps.dynamodb, "alice", pid)
    resp = env.client.http.post(f"{PREFIX}/avatars/{aid}/usage", headers=auth(),
                                body=body({"appId": "pose", "appName": "Pose", "action": "use", **bad}))
    assert resp.status_code == 400 and resp.json_body["error"]["code"] == "validation_error", resp.body
    message = {**event("alice", aid), **bad}
    sqs_event = env.client.events.generate_sqs_event(queue_name=USAGE_EVENTS_QUEUE,
                                                     message_bodies=[json.dumps(message)])
    assert env.client.lambda_.invoke("usage_worker", sqs_event).payload == {"batchItemFailures": []}
    parked = take_all(boto3.client("sqs", region_name="us-east-1"), env.aws["UsageEventsDlqUrl"])
    assert [m["MessageAttributes"]["rejectCode"]["StringValue"] for m in parked] == ["invalid_event"]
    assert stats(env.client)["totalUsage"] == 0


ID_ROUTES = [("get", "/projects/{id}"), ("put", "/projects/{id}"), ("delete", "/projects/{id}"),
             ("get", "/projects/{id}/avatars"), ("post", "/projects/{id}/avatars/upload"),
             ("post", "/projects/{id}/avatars/generate"), ("get", "/projects/{id}/generations"),
             ("get", "/avatars/{id}"), ("put", "/avatars/{id}"), ("delete", "/avatars/{id}"),
             ("post", "/avatars/{id}/usage"), ("get", "/avatars/{id}/usage-history"),
             ("post", "/avatars/{id}/variations"), ("get", "/generations/{id}"),
             ("post", "/generations/{id}/cancel"), ("post", "/generations/{id}/retry")]


@pytest.mark.parametrize("method, route", ID_ROUTES, ids=[f"{m} {r}" for m, r in ID_ROUTES])
def test_a_path_id_over_2_kb_is_404_on_every_route(env, method, route):
    send = getattr(env.client.http, method)
    kwargs = {"headers": auth()}
    if method in ("post", "put"):
        kwargs["body"] = body({"name": "x"})
    resp = send(PREFIX + route.replace("{id}", "x" * 2100), **kwargs)
    assert resp.status_code == 404 and resp.json_body["error"]["code"] == "not_found", resp.body


# ---- 13. weaker spots -----------------------------------------------------------------------------------

def raw_token(claims: dict) -> str:
    import jwt

    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.mark.parametrize("claims", [
    {"sub": "alice\n"}, {"sub": ".."}, {"sub": "."}, {"exp": "9999999999"},
    {"exp": int(time.time()) + 400 * 86400},
], ids=["trailing newline", "dot-dot", "dot", "exp as string", "a year long"])
def test_hostile_tokens_are_refused(env, claims):
    token = raw_token({"sub": "alice", "iat": int(time.time()), "exp": int(time.time()) + 600, **claims})
    resp = env.client.http.get(f"{PREFIX}/projects", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401, resp.body


@pytest.mark.parametrize("fields", [{"name": "evil\u202egpj.exe"}, {"name": "ok", "description": "a\x00b"}],
                         ids=["RTL override", "NUL"])
def test_names_with_bidi_overrides_and_text_with_nul_are_refused(env, fields):
    resp = env.client.http.post(f"{PREFIX}/projects", headers=auth(), body=body(fields))
    assert resp.status_code == 400 and resp.json_body["error"]["code"] == "validation_error"


def test_an_unsupported_content_type_answers_415_in_the_error_shape(env):
    resp = env.client.http.post(f"{PREFIX}/projects", headers={**auth(), "Content-Type": "text/plain"},
                                body=b"name=x")
    assert resp.status_code == 415
    assert resp.json_body["error"]["code"] == "unsupported_media_type" and resp.json_body["error"]["message"]


# ---- every cancellation reason of the other transactional paths ---------------------------------------

@pytest.mark.parametrize("failing", ["generation", "daily", "active"])
def test_every_cancellation_reason_of_retry_is_read_by_its_item(env, failing, monkeypatch):
    from chalicelib.generation import jobs, requests as generation
    from chalicelib.errors import ConflictError, QuotaExceededError
    from chalicelib.aws.models import UserDayModel

    deps = dependencies.get_deps()
    settings = deps.settings
    pid = project(env.client)
    gid = generate(env.client, pid).json_body["id"]
    job = generation.get("alice", gid, consistent=True)
    assert jobs.finish(deps.dynamodb, job, "failed", from_statuses=("pending",), error_message="boom")
    if failing == "daily":
        UserDayModel(user_pk("alice"), clock.day_key(clock.now())).update(
            actions=[UserDayModel.generations.set(settings.generation_daily_limit)])
    if failing == "active":
        UserStatsModel(user_pk("alice")).update(
            actions=[UserStatsModel.active_generations.set(settings.generation_active_limit)])
    stale = generation.get("alice", gid, consistent=True)
    if failing == "generation":  # a double click: the other retry won after this one read the job
        generation.retry(deps.dynamodb, deps.sqs, settings, "alice", gid)
        real_get = generation.get
        reads = []
        monkeypatch.setattr(generation, "get", lambda *a, **k: reads.append(a) or (stale if len(reads) == 1
                                                                                   else real_get(*a, **k)))
    with pytest.raises((ConflictError, QuotaExceededError)) as raised:
        generation.retry(deps.dynamodb, deps.sqs, settings, "alice", gid)
    if failing == "generation":
        assert raised.value.code == "invalid_state"
    else:
        assert raised.value.details["kind"] == failing


def test_a_job_whose_project_is_deleted_but_not_yet_purged_fails_and_leaves_no_files(env):
    pid = project(env.client)
    gid = generate(env.client, pid).json_body["id"]
    assert env.client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    deliver("generation_worker")  # before the purge: the completion finds no project
    job = GenerationModel.get(f"U#alice#G#{gid}", META, consistent_read=True)
    assert job.status == "failed" and "deleted" in job.error_message
    assert objects(env.aws, "images/alice/") == [] and objects(env.aws, "thumbs/alice/") == []
    deliver("cleanup_worker")
    assert stats(env.client)["activeGenerations"] == 0 and GenerationModel.count(f"U#alice#G#{gid}") == 0


def test_an_upload_finishing_after_its_project_was_deleted_counts_nothing(env):
    from tests.support import images as img

    pid = project(env.client)
    data = img.png(32, 32)
    created = upload_request(env.client, pid, data)
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=env.aws["UploadBucket"],
                                                           Key=created["upload"]["fields"]["key"], Body=data)
    assert env.client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    deliver("upload_worker")  # mark_ready: the "project" condition fails
    assert stats(env.client)["totalAvatars"] == 0
    assert objects(env.aws, "images/alice/") == [] and objects(env.aws, "thumbs/alice/") == []
    deliver("cleanup_worker")
    assert avatars.AvatarModel.count(avatar_pk("alice", created["avatar"]["id"])) == 0


# ---- make audit -----------------------------------------------------------------------------------------

def test_the_audit_finds_drifted_counters_orphans_and_stray_files_and_repairs_them(env):
    from infra.audit import audit, repair
    from tests.support import images as img

    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    aid = ready_avatar(deps.dynamodb, "alice", pid)
    made = avatars.get_avatar("alice", aid)
    for key in avatars.files_of(made):
        boto3.client("s3", region_name="us-east-1").put_object(Bucket=env.aws["UploadBucket"], Key=key,
                                                               Body=img.png(8, 8))
    assert use(env.client, aid, "pose", "a1").status_code == 201
    assert audit(["alice"], storage=deps.storage) == []
    # what a bug or a manual edit could leave behind
    UserStatsModel(user_pk("alice")).update(actions=[UserStatsModel.total_usage.set(7)])
    AppUsageSummaryModel(user_pk("alice"), "APPUSE#pose").update(actions=[AppUsageSummaryModel.count.set(3)])
    stray = "thumbs/alice/ava_01jstray0000000000000000000.jpg"
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=env.aws["UploadBucket"], Key=stray,
                                                           Body=img.png(8, 8))
    found = audit(["alice"], storage=deps.storage, now=clock.now() + timedelta(hours=2))
    assert sorted(str(f).split("\t")[2] for f in found) == [
        "STATS.totalUsage is 7, recount 1", f"{stray} belongs to no avatar", "usage by app pose is 3, recount 1"]
    assert repair(found, deps) == 3
    assert audit(["alice"], storage=deps.storage, now=clock.now() + timedelta(hours=2)) == []
    assert stats(env.client)["totalUsage"] == 1 and objects(env.aws, stray) == []


def test_the_audit_reports_stuck_work(env):
    from infra.audit import audit

    pid = project(env.client)
    gid = generate(env.client, pid).json_body["id"]
    deps = dependencies.get_deps()
    assert audit(["alice"]) == []
    later = audit(["alice"], now=clock.now() + timedelta(hours=7))
    assert [f.kind for f in later] == ["stuck"] and gid in str(later[0])


# ---- issue 21: the usage rate one user can reach over HTTP ----------------------------------------------

def test_usage_reports_over_the_per_second_limit_are_a_clear_429(env, monkeypatch):
    env(USAGE_RATE_PER_SECOND=3)
    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    aid = ready_avatar(deps.dynamodb, "alice", pid)
    frozen = clock.now()
    monkeypatch.setattr(clock, "now", lambda: frozen)  # all in one second
    codes = [use(env.client, aid, "pose", f"r{i}").status_code for i in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    refused = use(env.client, aid, "pose", "r9")
    assert refused.headers["Retry-After"] == "1" and refused.json_body["error"]["details"]["kind"] == "rate"
    assert stats(env.client)["totalUsage"] == 3
    monkeypatch.setattr(clock, "now", lambda: frozen + timedelta(seconds=1))  # the next second admits again
    assert use(env.client, aid, "pose", "r10").status_code == 201
    assert use(env.client, ready_avatar(deps.dynamodb, "bob", new_project(deps.dynamodb, "bob")), "pose", "b",
               ).status_code == 404  # (bob's avatar under alice's token: still a 404, not a 429)


# ---- issue 32: the rate window lives outside the user's partition ------------------------------------------

def test_refused_usage_reports_write_nothing_on_the_users_partition(env, monkeypatch):
    from tests.support.ddb_calls import DynamoDBCalls

    # GIVEN a limit of 2 reports a second, already used up in this (frozen) second
    env(USAGE_RATE_PER_SECOND=2)
    deps = dependencies.get_deps()
    aid = ready_avatar(deps.dynamodb, "alice", new_project(deps.dynamodb, "alice"))
    frozen = clock.now()
    monkeypatch.setattr(clock, "now", lambda: frozen)
    assert [use(env.client, aid, "pose", f"w{i}").status_code for i in range(2)] == [201, 201]

    # WHEN a client ignores the 429s and keeps sending
    with DynamoDBCalls() as calls:
        codes = [use(env.client, aid, "pose", f"x{i}").status_code for i in range(5)]

    # THEN every one is refused; the only write is the window's own first refusal, on a key that is not
    # the user's partition (where STATS, DAY# and APPUSE# live), and the rest cost nothing at all
    assert codes == [429] * 5
    assert calls.names == ["UpdateItem"]
    assert calls.partition_keys() == [f"RATE#USAGE#alice#{clock.epoch(frozen)}"]
    assert not any(k == user_pk("alice") or k.startswith(user_pk("alice") + "#") for k in calls.partition_keys())


# ---- issue 32: stray files found from their intents, not by walking the bucket -------------------------------

def test_a_file_whose_item_never_came_is_removed_from_its_intent_without_walking_the_bucket(env, monkeypatch):
    from chalicelib.avatars import file_intents
    from chalicelib.housekeeping import sweeper
    from chalicelib.aws.models import FileIntentModel
    from chalicelib.aws.storage import image_key
    from chalicelib.housekeeping.sweeper import sweep

    deps = dependencies.get_deps()
    pid = new_project(deps.dynamodb, "alice")
    aid = ready_avatar(deps.dynamodb, "alice", pid)
    kept = avatars.get_avatar("alice", aid).image_key
    # GIVEN a worker that recorded its intents, put its files, then died before any item pointed at one
    # (and the avatar's own file, whose intent is also recorded)
    lost = image_key("alice", ids.new_id("ava"), "png", version="t1")
    file_intents.intend([lost, kept])
    deps.storage.put(lost, b"x", "image/png")
    deps.storage.put(kept, b"y", "image/png")
    walked = []
    monkeypatch.setattr(sweeper, "remove_stray_files", lambda *a, **k: walked.append(1) or [])

    # WHEN the sweeper runs before the grace period, then after it
    early = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings)
    late = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(hours=2))
    again = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(hours=3))

    # THEN only the file nobody points at is removed, once, found from its intent; the intents are gone
    assert early.files_removed == [] and late.files_removed == [lost] and again.files_removed == []
    assert objects(env.aws, lost) == [] and objects(env.aws, kept) == [kept]
    assert file_intents.expired(clock.now() + timedelta(days=1)) == []
    for key in (lost, kept):
        assert FileIntentModel.count(f"FILE#{key}") == 0


def test_uploaded_and_generated_files_record_their_intents_before_they_are_written(env):
    from chalicelib.avatars import file_intents
    from chalicelib.housekeeping import sweeper

    deps = dependencies.get_deps()
    pid = project(env.client)
    assert generate(env.client, pid).status_code == 202
    assert deliver("generation_worker") == 1
    due = file_intents.expired(clock.now() + timedelta(hours=2))
    assert due and all(k.startswith(("images/", "thumbs/", "display/")) for k in due)
    assert len(due) % 3 == 0  # image, thumbnail and display copy of each generated avatar
    assert sweeper.check_expired_intents(deps.storage, clock.now() + timedelta(hours=2)) == []  # all referenced
    assert file_intents.expired(clock.now() + timedelta(hours=2)) == []
