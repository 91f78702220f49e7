"""Exports end to end over moto: the routes (chalice.test.Client), the export worker fed from its
queue the way the event source mapping does (tests.support.generation.deliver), the sweeper with a
simulated clock. The zip is read back with Python's zipfile and checked against its manifest."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import timedelta

import boto3
import pytest

from chalicelib import clock
from tests.functional.conftest import PREFIX, auth, body
from tests.support import images as img
from tests.support.generation import deliver, receive_raw

FILES = {"original.jpg", "display.webp", "thumbnail.jpg", "avatar.json", "usage.json", "usage.csv"}


@pytest.fixture
def small_parts(monkeypatch):
    """Parts of 64 KiB (moto told to accept them): a few noisy images already span several parts,
    so tails carried across steps and part numbering are exercised."""
    import moto.s3.models

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
    monkeypatch.setenv("EXPORT_PART_BYTES", str(64 * 1024))


@pytest.fixture
def studio(client, aws, monkeypatch, small_parts):
    """Alice's project with two uploaded avatars (noise, so they do not compress), one generated
    (offline provider), and usage events on the first, one of them hostile to spreadsheets."""
    from chalicelib import dependencies

    monkeypatch.setenv("GENERATION_PROVIDER", "offline")
    dependencies.reset()
    pid = post(client, "/projects", {"name": "Shoot"}).json_body["id"]
    s3 = boto3.client("s3", region_name="us-east-1")
    avatar_ids = []
    for name in ("Maya B.", "../../etc/passwd"):
        data = noise_jpeg(300, 300)
        created = post(client, f"/projects/{pid}/avatars/upload",
                       {"name": name, "contentType": "image/jpeg", "size": len(data), "personaName": "Maya",
                        "gender": "female"}).json_body
        s3.put_object(Bucket=aws["UploadBucket"], Key=created["upload"]["fields"]["key"], Body=data,
                      ContentType="image/jpeg")
        avatar_ids.append(created["avatar"]["id"])
    deliver("upload_worker")
    post(client, f"/projects/{pid}/avatars/generate", {"prompt": "a calm face, studio light", "name": "Gen"})
    deliver("generation_worker")
    for i, (app_name, reference) in enumerate([("Pose", "ref-1"), ("=HYPERLINK(\"http://evil\")", "@SUM(A1)")]):
        resp = post(client, f"/avatars/{avatar_ids[0]}/usage",
                    {"appId": f"app-{i}", "appName": app_name, "action": "pose.generate", "referenceId": reference})
        assert resp.status_code in (200, 201, 202), resp.body
    items = client.http.get(f"{PREFIX}/projects/{pid}/avatars", headers=auth()).json_body["items"]
    assert sorted(a["status"] for a in items) == ["ready"] * 3
    return {"project": pid, "avatars": avatar_ids, "generated": next(a["id"] for a in items if a["name"] == "Gen"),
            "bucket": aws["UploadBucket"], "queue": aws["ExportQueueUrl"]}


def noise_jpeg(width: int, height: int) -> bytes:
    from PIL import Image
    import os

    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "JPEG", quality=95)
    return out.getvalue()


def post(client, path, payload=None, user="alice"):
    return client.http.post(f"{PREFIX}{path}", headers=auth(user), body=body(payload) if payload is not None else b"")


def status(client, export_id, user="alice"):
    return client.http.get(f"{PREFIX}/exports/{export_id}", headers=auth(user))


def item(user, export_id):
    from chalicelib.exports import store

    return store.get(user, export_id, consistent=True)


def read_zip(bucket, user, export_id) -> zipfile.ZipFile:
    data = boto3.client("s3", region_name="us-east-1").get_object(
        Bucket=bucket, Key=f"exports/{user}/{export_id}.zip")["Body"].read()
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def check_manifest(archive: zipfile.ZipFile) -> dict:
    manifest = json.loads(archive.read("manifest.json"))
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(archive.namelist()) - {"manifest.json"}
    for path, entry in listed.items():
        data = archive.read(path)
        assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest()), path
    return manifest


def test_an_avatar_export_holds_its_files_metadata_history_and_checksums(client, studio):
    # GIVEN a ready avatar with usage
    aid = studio["avatars"][0]

    # WHEN alice exports it and the worker runs
    started = post(client, f"/avatars/{aid}/export")
    assert started.status_code == 202, started.body
    export = started.json_body
    assert (export["status"], export["progress"], export["downloadUrl"]) == ("pending", {"done": 0, "total": 1}, None)
    assert started.headers["Location"] == f"{PREFIX}/exports/{export['id']}"
    assert deliver("export_worker") == 1

    # THEN it is completed with a short-lived download URL signed at each read
    done = status(client, export["id"]).json_body
    assert done["status"] == "completed" and done["progress"] == {"done": 1, "total": 1}
    assert f"exports/alice/{export['id']}.zip" in done["downloadUrl"] and "X-Amz-Expires=300" in done["downloadUrl"]
    assert done["bytes"] > 0 and done["expiresAt"] > done["completedAt"]
    # and the zip holds one folder with every file, each checksum matching
    archive = read_zip(studio["bucket"], "alice", export["id"])
    manifest = check_manifest(archive)
    [folder] = {name.split("/")[0] for name in archive.namelist() if "/" in name}
    assert folder == f"Maya-B-{aid}"
    assert {name.split("/")[1] for name in archive.namelist() if "/" in name} == FILES
    stored = boto3.client("s3", region_name="us-east-1")
    avatar = client.http.get(f"{PREFIX}/avatars/{aid}", headers=auth()).json_body
    original = stored.get_object(Bucket=studio["bucket"], Key=f"images/alice/{aid}.jpg")["Body"].read()
    assert archive.read(f"{folder}/original.jpg") == original  # the original as stored
    doc = json.loads(archive.read(f"{folder}/avatar.json"))
    assert doc["id"] == aid and doc["persona"]["name"] == "Maya" and doc["attributes"]["gender"] == avatar["gender"]
    assert doc["source"]["type"] == "uploaded" and "generation" not in doc
    history = json.loads(archive.read(f"{folder}/usage.json"))
    assert len(history["events"]) == 2 and {a["appId"] for a in history["summary"]} == {"app-0", "app-1"}
    rows = list(csv.reader(io.StringIO(archive.read(f"{folder}/usage.csv").decode())))
    assert rows[0][:3] == ["occurredAt", "recordedAt", "appId"] and len(rows) == 3
    hostile = next(r for r in rows[1:] if r[2] == "app-1")
    assert hostile[3] == "'=HYPERLINK(\"http://evil\")" and hostile[5] == "'@SUM(A1)"  # never a formula
    assert manifest["avatars"] == [{"id": aid, "name": "Maya B.", "folder": folder}] and manifest["missing"] == []
    # and the step's state is gone from S3: only the zip is kept
    keys = [o["Key"] for o in stored.list_objects_v2(Bucket=studio["bucket"], Prefix="exports/").get("Contents", [])]
    assert keys == [f"exports/alice/{export['id']}.zip"]


def test_a_project_export_holds_every_ready_avatar_with_generation_details(client, studio):
    export = post(client, f"/projects/{studio['project']}/export").json_body
    assert export["progress"]["total"] == 3
    deliver("export_worker")
    assert status(client, export["id"]).json_body["status"] == "completed"
    archive = read_zip(studio["bucket"], "alice", export["id"])
    manifest = check_manifest(archive)
    assert sorted(a["id"] for a in manifest["avatars"]) == sorted(studio["avatars"] + [studio["generated"]])
    folders = {a["folder"] for a in manifest["avatars"]}
    assert f"etc-passwd-{studio['avatars'][1]}" in folders  # a hostile name is only a name
    assert all(not n.startswith(("/", ".")) and ".." not in n.split("/") for n in archive.namelist())
    generated = next(a for a in manifest["avatars"] if a["id"] == studio["generated"])
    doc = json.loads(archive.read(f"{generated['folder']}/avatar.json"))
    assert doc["source"]["type"] == "text_to_image" and doc["source"]["generationId"]
    assert doc["generation"]["prompt"].startswith("a calm face, studio light") and doc["generation"]["seed"] is not None
    assert set(doc["generation"]) == {"prompt", "seed", "model", "provider", "safety"}
    assert doc["generation"]["provider"]  # the job says which provider made it


def test_a_small_time_budget_continues_in_steps_and_gives_the_same_zip(client, studio, monkeypatch):
    from chalicelib import dependencies

    # GIVEN a step that hands on after every avatar (less time left than it reserves)
    monkeypatch.setenv("EXPORT_STEP_RESERVE_SECONDS", "100000")
    dependencies.reset()
    export = post(client, f"/projects/{studio['project']}/export").json_body

    # WHEN the first delivery runs
    assert deliver("export_worker", rounds=1) == 1

    # THEN one avatar is written, the chain is at step 1 with its checkpoint, and step 1 is queued
    first = item("alice", export["id"])
    assert (first.status, int(first.step), int(first.done)) == ("running", 1, 1)
    assert first.checkpoint == f"exports/alice/{export['id']}.step-1" and first.upload_id
    assert int(first.bytes_written) > 0 and status(client, export["id"]).json_body["progress"]["done"] == 1
    [queued] = receive_raw(studio["queue"])
    assert json.loads(queued["Body"])["step"] == 1
    boto3.client("sqs", region_name="us-east-1").change_message_visibility(
        QueueUrl=studio["queue"], ReceiptHandle=queued["ReceiptHandle"], VisibilityTimeout=0)

    # WHEN the rest of the chain runs
    assert deliver("export_worker") == 2  # step 1 writes an avatar, step 2 the last one and finishes

    # THEN it completed; the zip is valid, its parts numbered on from the first step's
    final = item("alice", export["id"])
    assert (final.status, int(final.done), int(final.step)) == ("completed", 3, 2)
    archive = read_zip(studio["bucket"], "alice", export["id"])
    assert len(check_manifest(archive)["avatars"]) == 3
    assert len(archive.namelist()) == 3 * len(FILES) + 1
    s3 = boto3.client("s3", region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=studio["bucket"], Prefix="exports/").get("Contents", [])]
    assert keys == [f"exports/alice/{export['id']}.zip"]  # every checkpoint removed
    etag = s3.head_object(Bucket=studio["bucket"], Key=keys[0])["ETag"].strip('"')
    assert int(etag.rsplit("-", 1)[1]) >= 3  # a multipart upload of several parts, written over 3 steps


def test_a_duplicate_or_older_step_message_does_nothing(client, studio, monkeypatch):
    from chalicelib import dependencies
    from chalicelib.exports import service, store
    from chalicelib.exports.files import ExportFiles

    monkeypatch.setenv("EXPORT_STEP_RESERVE_SECONDS", "100000")
    dependencies.reset()
    export = post(client, f"/projects/{studio['project']}/export").json_body
    sqs = boto3.client("sqs", region_name="us-east-1")
    deliver("export_worker", rounds=1)
    before = item("alice", export["id"]).attribute_values

    # WHEN step 0's message comes again (a redelivery)
    sqs.send_message(QueueUrl=studio["queue"], MessageBody=json.dumps(
        {"type": "export.step", "userId": "alice", "exportId": export["id"], "step": 0}))
    reads = count_s3_reads(monkeypatch)
    for message in receive_raw(studio["queue"]):
        body_ = json.loads(message["Body"])
        if body_["step"] == 0:
            settings = dependencies.get_deps().settings
            outcome = service.run_step(ExportFiles.of(dependencies.get_deps().storage), settings, "alice",
                                       export["id"], 0, remaining=lambda: 1000, hand_on=lambda s: None)
            assert outcome == "stale"
    # THEN nothing was read, written or sent
    assert reads == [] and item("alice", export["id"]).attribute_values == before

    # WHEN a live run holds step 1 and a duplicate of it arrives
    current = item("alice", export["id"])
    now = clock.now()
    assert store.claim(current, 1, "live-run", clock.epoch(now) + 300, now, clock.iso(now))
    settings = dependencies.get_deps().settings
    outcome = service.run_step(ExportFiles.of(dependencies.get_deps().storage), settings, "alice", export["id"], 1,
                               remaining=lambda: 1000, hand_on=lambda s: None)
    # THEN it leaves the step to that run
    assert outcome == "busy" and reads == []
    held = item("alice", export["id"])
    assert (held.claim_token, int(held.step), int(held.done)) == ("live-run", 1, 1)


def count_s3_reads(monkeypatch) -> list:
    from chalicelib.exports.files import ExportFiles

    calls: list = []
    for name in ("open", "load_checkpoint", "upload_part", "start_upload"):
        original = getattr(ExportFiles, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ExportFiles, name, spy)
    return calls


def test_a_run_that_died_is_taken_over_after_its_lease(client, studio):
    from chalicelib import dependencies
    from chalicelib.exports import service, store
    from chalicelib.exports.files import ExportFiles

    export = post(client, f"/avatars/{studio['avatars'][0]}/export").json_body
    current = item("alice", export["id"])
    past = clock.now() - timedelta(seconds=1000)
    assert store.claim(current, 0, "dead-run", clock.epoch(past) + 360, past, clock.iso(past))  # lease over
    deps = dependencies.get_deps()
    outcome = service.run_step(ExportFiles.of(deps.storage), deps.settings, "alice", export["id"], 0,
                               remaining=lambda: 1000, hand_on=lambda s: None)
    assert outcome == "completed"
    check_manifest(read_zip(studio["bucket"], "alice", export["id"]))


def test_another_users_ids_are_404_and_their_messages_change_nothing(client, studio):
    aid, pid = studio["avatars"][0], studio["project"]
    export = post(client, f"/avatars/{aid}/export").json_body
    for method, path in (("POST", f"/avatars/{aid}/export"), ("POST", f"/projects/{pid}/export"),
                         ("GET", f"/exports/{export['id']}")):
        resp = client.http.request(method, f"{PREFIX}{path}", headers=auth("bob"), body=b"")
        assert resp.status_code == 404 and resp.json_body["error"]["code"] == "not_found", (path, resp.body)
    # A forged message naming alice's export under bob's id finds nothing (the key holds the user).
    boto3.client("sqs", region_name="us-east-1").send_message(QueueUrl=studio["queue"], MessageBody=json.dumps(
        {"type": "export.step", "userId": "bob", "exportId": export["id"], "step": 0}))
    deliver("export_worker")
    assert status(client, export["id"]).json_body["status"] == "completed"  # alice's own message ran
    assert item("bob", export["id"]) is None


@pytest.mark.parametrize("export_id", ["exp_" + "0" * 26, "nonsense", "exp_../../x", "x" * 300, "%00"])
def test_unknown_or_malformed_export_ids_are_404(client, aws, export_id):
    resp = status(client, export_id)
    assert resp.status_code == 404 and resp.json_body["error"]["code"] == "not_found"


def test_an_avatar_not_ready_cannot_be_exported(client, aws):
    pid = post(client, "/projects", {"name": "P"}).json_body["id"]
    created = post(client, f"/projects/{pid}/avatars/upload",
                   {"name": "x", "contentType": "image/jpeg", "size": 1000}).json_body
    resp = post(client, f"/avatars/{created['avatar']['id']}/export")
    assert resp.status_code == 409 and resp.json_body["error"]["code"] == "invalid_state"


@pytest.mark.parametrize("raw", ["not json", "{}", json.dumps({"userId": "alice", "exportId": "exp_x", "step": 0}),
                                 json.dumps({"userId": "alice", "exportId": "exp_" + "0" * 26, "step": "0"}),
                                 json.dumps({"userId": ["a"], "exportId": "exp_" + "0" * 26, "step": 0}),
                                 json.dumps({"userId": "alice", "exportId": "exp_" + "0" * 26, "step": -1})])
def test_malformed_messages_are_dropped_not_retried(client, aws, raw):
    event = client.events.generate_sqs_event(queue_name="avatar-creator-exports", message_bodies=[raw])
    assert client.lambda_.invoke("export_worker", event).payload == {"batchItemFailures": []}


def test_an_avatar_deleted_before_its_export_ran_fails_it_with_a_reason(client, studio):
    aid = studio["avatars"][0]
    export = post(client, f"/avatars/{aid}/export").json_body
    assert client.http.delete(f"{PREFIX}/avatars/{aid}", headers=auth()).status_code == 204
    deliver("export_worker")
    failed = status(client, export["id"]).json_body
    assert (failed["status"], failed["errorCode"], failed["downloadUrl"]) == ("failed", "not_found", None)


def test_the_sweeper_expires_exports_after_their_retention(client, studio):
    from chalicelib import dependencies
    from chalicelib.housekeeping.sweeper import sweep

    export = post(client, f"/avatars/{studio['avatars'][0]}/export").json_body
    deliver("export_worker")
    deps = dependencies.get_deps()
    # GIVEN a completed export; a sweep within its 7 days changes nothing
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(days=6),
                   files=False)
    assert report.exports_swept == [] and status(client, export["id"]).json_body["status"] == "completed"
    # WHEN the sweeper runs after 7 days
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings,
                   now=clock.now() + timedelta(days=7, minutes=1), files=False)
    # THEN the zip is gone and the export answers `expired`, without a URL; a second sweep finds nothing
    assert len(report.exports_swept) == 1
    expired = status(client, export["id"]).json_body
    assert (expired["status"], expired["downloadUrl"]) == ("expired", None)
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.list_objects_v2(Bucket=studio["bucket"], Prefix="exports/").get("KeyCount", 0) == 0
    assert item("alice", export["id"]).ttl is not None
    again = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings,
                  now=clock.now() + timedelta(days=8), files=False)
    assert again.exports_swept == []


def test_a_stalled_chain_is_sent_again_then_failed_by_the_sweeper(client, studio):
    from chalicelib import dependencies
    from chalicelib.housekeeping.sweeper import sweep

    deps = dependencies.get_deps()
    export = post(client, f"/avatars/{studio['avatars'][0]}/export").json_body
    lose_messages(studio["queue"])
    later = clock.now() + timedelta(minutes=16)
    # WHEN the sweeper finds it past its stall deadline
    assert len(sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=later, files=False).exports_swept) == 1
    # THEN the chain runs again under a new step, and completes
    assert int(item("alice", export["id"]).step) == 1
    deliver("export_worker")
    assert status(client, export["id"]).json_body["status"] == "completed"

    # A chain that stays lost is sent again twice, then failed
    export = post(client, f"/avatars/{studio['avatars'][0]}/export").json_body
    for minutes in (16, 32, 48):
        lose_messages(studio["queue"])
        sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(minutes=minutes),
              files=False)
    failed = status(client, export["id"]).json_body
    assert (failed["status"], failed["errorCode"]) == ("failed", "timed_out")


def lose_messages(queue_url: str) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    for message in receive_raw(queue_url):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_forced_zip64_export_is_read_by_zipfile(client, studio):
    from chalicelib import dependencies
    from chalicelib.exports import service
    from chalicelib.exports.files import ExportFiles

    export = post(client, f"/projects/{studio['project']}/export").json_body
    deps = dependencies.get_deps()
    assert service.run_step(ExportFiles.of(deps.storage), deps.settings, "alice", export["id"], 0,
                            remaining=lambda: 1000, hand_on=lambda s: None, force_zip64=True) == "completed"
    archive = read_zip(studio["bucket"], "alice", export["id"])
    assert all(info.extract_version >= 45 for info in archive.infolist())
    assert len(check_manifest(archive)["avatars"]) == 3


def test_reading_an_export_is_one_getitem_whatever_its_size(client, studio):
    from tests.support.ddb_calls import DynamoDBCalls

    export = post(client, f"/projects/{studio['project']}/export").json_body
    deliver("export_worker")
    with DynamoDBCalls() as calls:
        assert status(client, export["id"]).json_body["status"] == "completed"
    assert calls.names == ["GetItem"]


def test_a_user_may_start_only_so_many_exports_a_day(client, aws, monkeypatch):
    from chalicelib import dependencies

    monkeypatch.setenv("EXPORT_DAILY_LIMIT", "2")
    dependencies.reset()
    pid = post(client, "/projects", {"name": "P"}).json_body["id"]
    assert [post(client, f"/projects/{pid}/export").status_code for _ in range(2)] == [202, 202]
    refused = post(client, f"/projects/{pid}/export")
    assert refused.status_code == 429 and refused.json_body["error"]["details"]["kind"] == "exports"
    assert 0 < int(refused.headers["Retry-After"]) <= 86400
    assert post(client, f"/projects/{pid}/export", user="bob").status_code == 404  # still 404 first for bob
    bob_pid = post(client, "/projects", {"name": "B"}, user="bob").json_body["id"]
    assert post(client, f"/projects/{bob_pid}/export", user="bob").status_code == 202  # a limit per user


def test_no_export_outlives_what_it_exported(client, studio):
    """Issue 29 item 7: deleting an avatar (or its project) ends its exports at once — no download URL
    from the next read — and the sweeper's next run removes their files."""
    from chalicelib import dependencies
    from chalicelib.housekeeping.sweeper import sweep

    aid = studio["avatars"][1]
    mine = post(client, f"/avatars/{aid}/export").json_body
    whole = post(client, f"/projects/{studio['project']}/export").json_body
    other = post(client, f"/avatars/{studio['avatars'][0]}/export").json_body
    deliver("export_worker")
    assert {status(client, x["id"]).json_body["status"] for x in (mine, whole, other)} == {"completed"}
    # WHEN the avatar is deleted: its own export expires now, the project's and the other avatar's do not
    assert client.http.delete(f"{PREFIX}/avatars/{aid}", headers=auth()).status_code == 204
    gone = status(client, mine["id"]).json_body
    assert (gone["status"], gone["downloadUrl"]) == ("expired", None)
    assert status(client, whole["id"]).json_body["downloadUrl"] is not None
    deps = dependencies.get_deps()
    report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(seconds=1),
                   files=False)
    assert report.exports_swept == [item("alice", mine["id"]).pk] and item("alice", mine["id"]).status == "expired"
    s3 = boto3.client("s3", region_name="us-east-1")
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=studio["bucket"], Prefix="exports/").get("Contents", [])}
    assert left == {f"exports/alice/{whole['id']}.zip", f"exports/alice/{other['id']}.zip"}
    # WHEN the project is deleted and purged: its export (and the other avatar's) go the same way
    assert client.http.delete(f"{PREFIX}/projects/{studio['project']}", headers=auth()).status_code == 204
    deliver("cleanup_worker")
    assert {status(client, x["id"]).json_body["status"] for x in (whole, other)} == {"expired"}
    sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(seconds=1), files=False)
    assert s3.list_objects_v2(Bucket=studio["bucket"], Prefix="exports/").get("KeyCount", 0) == 0
