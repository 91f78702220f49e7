"""Upload flow over moto: ask for an upload, put the object, feed the S3 event to the worker.

moto enforces nothing on presigned POSTs, so here the policy is asserted as written; S3's
enforcement is tested on the local stack (tests/integration/test_upload_flow.py).
"""
from __future__ import annotations

import io
import json
import time

import boto3
import pytest

from tests.functional.conftest import PREFIX, auth, body
from tests.support import images as img
from tests.support.uploads import decode_policy, drain_now, policy_conditions, upload_spec

MB = 1024 * 1024


# ---- helpers ------------------------------------------------------------------------------------

def s3():
    return boto3.client("s3", region_name="us-east-1")


def table(aws):
    return boto3.resource("dynamodb", region_name="us-east-1").Table(aws["TableName"])


def create_project(client, user="alice", name="Shoot"):
    resp = client.http.post(f"{PREFIX}/projects", headers=auth(user), body=body({"name": name}))
    assert resp.status_code == 201, resp.body
    return resp.json_body["id"]


def request_upload(client, project_id, user="alice", data=None, **fields):
    resp = client.http.post(f"{PREFIX}/projects/{project_id}/avatars/upload", headers=auth(user),
                            body=body(upload_spec(data, **fields)))
    assert resp.status_code == 201, resp.body
    return resp.json_body


def put_upload(aws, created, data, content_type=None):
    """What the browser's POST leaves in the bucket (moto sends the notification to the upload queue)."""
    fields = created["upload"]["fields"]
    s3().put_object(Bucket=aws["UploadBucket"], Key=fields["key"], Body=data,
                    ContentType=content_type or fields["Content-Type"])


def get_avatar(client, avatar_id, user="alice"):
    resp = client.http.get(f"{PREFIX}/avatars/{avatar_id}", headers=auth(user))
    assert resp.status_code == 200, resp.body
    return resp.json_body


def upload(client, aws, project_id, data, user="alice", **fields):
    created = request_upload(client, project_id, user=user, data=data, **fields)
    put_upload(aws, created, data)
    assert drain_now(client, aws["UploadQueueUrl"], "upload_worker") >= 1
    return get_avatar(client, created["avatar"]["id"], user=user)


def exists(aws, key):
    return s3().list_objects_v2(Bucket=aws["UploadBucket"], Prefix=key).get("KeyCount", 0) > 0


def read_object(aws, key):
    return s3().get_object(Bucket=aws["UploadBucket"], Key=key)["Body"].read()


def stats(aws, user="alice"):
    return table(aws).get_item(Key={"PK": f"U#{user}", "SK": "STATS"}, ConsistentRead=True).get("Item", {})


def project_count(client, project_id, user="alice"):
    return client.http.get(f"{PREFIX}/projects/{project_id}", headers=auth(user)).json_body["avatarCount"]


def receive_one(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    msgs = sqs.receive_message(QueueUrl=aws["UploadQueueUrl"], MaxNumberOfMessages=1,
                               WaitTimeSeconds=0).get("Messages", [])
    assert msgs, "no S3 notification arrived on the upload queue"
    sqs.delete_message(QueueUrl=aws["UploadQueueUrl"], ReceiptHandle=msgs[0]["ReceiptHandle"])
    return msgs[0]["Body"]


def invoke(client, aws, *bodies):
    queue = aws["UploadQueueUrl"].rsplit("/", 1)[1]
    event = client.events.generate_sqs_event(queue_name=queue, message_bodies=list(bodies))
    return client.lambda_.invoke("upload_worker", event).payload


def s3_event(bucket, key, size=100, event_name="ObjectCreated:Post"):
    return json.dumps({"Records": [{"eventName": event_name, "s3": {"bucket": {"name": bucket},
                                                                 "object": {"key": key, "size": size}}}]})


def pil(data):
    from PIL import Image

    return Image.open(io.BytesIO(data))


# ---- asking for an upload -----------------------------------------------------------------------

def test_upload_request_creates_uploading_avatar_and_pinned_policy(client, aws):
    pid = create_project(client)
    before = time.time()
    created = request_upload(client, pid, name="Ada", contentType="image/png", size=2048, gender="female",
                             personaName="Ada L.", personaPersonality=["curious"])
    avatar, ticket = created["avatar"], created["upload"]
    assert avatar["status"] == "uploading" and avatar["sourceType"] == "uploaded"
    assert avatar["imageUrl"] is None and avatar["thumbnailUrl"] is None
    assert avatar["gender"] == "female" and avatar["personaPersonality"] == ["curious"]

    key = f"uploads/alice/{avatar['id']}"
    fields = ticket["fields"]
    assert fields["key"] == key and fields["Content-Type"] == "image/png"
    assert ticket["url"].endswith(aws["UploadBucket"]) or aws["UploadBucket"] in ticket["url"]
    conditions = policy_conditions(fields)
    assert ["eq", "$key", key] in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 2048] in conditions  # the declared size, not just the limit
    assert {"bucket": aws["UploadBucket"]} in conditions

    from datetime import datetime

    expiration = datetime.fromisoformat(decode_policy(fields)["expiration"].replace("Z", "+00:00")).timestamp()
    assert before + 290 <= expiration <= time.time() + 310
    expires_at = datetime.fromisoformat(ticket["expiresAt"].replace("Z", "+00:00")).timestamp()
    assert abs(expires_at - expiration) < 2

    item = table(aws).get_item(Key={"PK": f"U#alice#A#{avatar['id']}", "SK": "META"})["Item"]
    assert before + 3590 <= int(item["ttl"]) <= time.time() + 3610
    assert item["uploadKey"] == key
    assert project_count(client, pid) == 0  # counted only once ready


def test_declared_size_over_limit_or_other_type_is_400_and_writes_nothing(client, aws):
    pid = create_project(client)
    for spec in ({"size": 10 * MB + 1}, {"contentType": "image/gif"}, {"contentType": "text/plain"},
                 {"size": 0}, {"size": "100"}, {"filename": "../x.png"}):
        resp = client.http.post(f"{PREFIX}/projects/{pid}/avatars/upload", headers=auth(),
                                body=body({**upload_spec(), **spec}))
        assert resp.status_code == 400, (spec, resp.body)
        assert set(resp.json_body["error"]) == {"code", "message", "details"}
    assert client.http.get(f"{PREFIX}/projects/{pid}/avatars", headers=auth()).json_body["items"] == []


def test_exactly_10_mb_is_accepted(client, aws):
    pid = create_project(client)
    assert request_upload(client, pid, size=10 * MB)["avatar"]["status"] == "uploading"


def test_upload_into_missing_or_other_users_project_is_404_and_writes_nothing(client, aws):
    pid = create_project(client, user="alice")
    for user, project in (("bob", pid), ("alice", "prj_missing")):
        for path, payload in (("upload", upload_spec()), ("uploads", {"files": [upload_spec()]})):
            resp = client.http.post(f"{PREFIX}/projects/{project}/avatars/{path}", headers=auth(user),
                                    body=body(payload))
            assert resp.status_code == 404, (user, path, resp.body)
    items = table(aws).query(IndexName="GSI1", KeyConditionExpression="GSI1PK = :p",
                             ExpressionAttributeValues={":p": f"U#bob#P#{pid}"})["Items"]
    assert items == []


def test_upload_into_a_deleted_project_is_404(client, aws):
    pid = create_project(client)
    assert client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    resp = client.http.post(f"{PREFIX}/projects/{pid}/avatars/upload", headers=auth(), body=body(upload_spec()))
    assert resp.status_code == 404
    items = table(aws).query(IndexName="GSI1", KeyConditionExpression="GSI1PK = :p",
                             ExpressionAttributeValues={":p": f"U#alice#P#{pid}"})["Items"]
    assert items == []


def test_batch_of_20_gives_20_distinct_tickets_and_21_is_400(client, aws):
    pid = create_project(client)
    files = [upload_spec(name=f"p{i}", contentType=("image/jpeg", "image/png", "image/webp")[i % 3])
             for i in range(20)]
    resp = client.http.post(f"{PREFIX}/projects/{pid}/avatars/uploads", headers=auth(), body=body({"files": files}))
    assert resp.status_code == 201, resp.body
    items = resp.json_body["items"]
    assert [i["avatar"]["name"] for i in items] == [f"p{i}" for i in range(20)]
    keys = {i["upload"]["fields"]["key"] for i in items}
    assert len(keys) == 20 and all(k.startswith("uploads/alice/") for k in keys)
    assert [i["upload"]["fields"]["Content-Type"] for i in items] == [f["contentType"] for f in files]

    too_many = [upload_spec(name=f"q{i}") for i in range(21)]
    resp = client.http.post(f"{PREFIX}/projects/{pid}/avatars/uploads", headers=auth(),
                            body=body({"files": too_many}))
    assert resp.status_code == 400
    listed = client.http.get(f"{PREFIX}/projects/{pid}/avatars?limit=100", headers=auth()).json_body["items"]
    assert len(listed) == 20


def test_batch_with_one_bad_file_is_refused_whole(client, aws):
    pid = create_project(client)
    files = [upload_spec(name="ok"), upload_spec(name="big", size=11 * MB), upload_spec(name="gif",
                                                                                      contentType="image/gif")]
    resp = client.http.post(f"{PREFIX}/projects/{pid}/avatars/uploads", headers=auth(), body=body({"files": files}))
    assert resp.status_code == 400
    assert client.http.post(f"{PREFIX}/projects/{pid}/avatars/uploads", headers=auth(),
                            body=body({"files": []})).status_code == 400
    assert client.http.get(f"{PREFIX}/projects/{pid}/avatars", headers=auth()).json_body["items"] == []


# ---- the worker -----------------------------------------------------------------------------

def test_uploaded_jpeg_becomes_ready_with_300px_thumbnail(client, aws):
    pid = create_project(client)
    data = img.jpeg(1200, 800)
    avatar = upload(client, aws, pid, data)
    assert avatar["status"] == "ready" and avatar["statusReason"] is None
    assert (avatar["width"], avatar["height"], avatar["format"]) == (1200, 800, "JPEG")
    assert avatar["bytes"] > 0
    assert "X-Amz-Signature=" in avatar["imageUrl"] and "X-Amz-Signature=" in avatar["thumbnailUrl"]

    uid_aid = f"alice/{avatar['id']}"
    thumb = pil(read_object(aws, f"thumbs/{uid_aid}.jpg"))
    assert thumb.size == (300, 300) and thumb.format == "JPEG"
    assert pil(read_object(aws, f"images/{uid_aid}.jpg")).size == (1200, 800)
    assert not exists(aws, f"uploads/{uid_aid}")
    item = table(aws).get_item(Key={"PK": f"U#{uid_aid.replace('/', '#A#')}", "SK": "META"})["Item"]
    assert "ttl" not in item
    assert project_count(client, pid) == 1
    s = stats(aws)
    assert (s["totalAvatars"], s["avatarsUploaded"]) == (1, 1)


@pytest.mark.parametrize("make, content_type, fmt, ext", [
    (lambda: img.png(640, 480), "image/png", "PNG", "png"),
    (lambda: img.webp(640, 480), "image/webp", "WEBP", "webp"),
])
def test_png_and_webp_become_ready(client, aws, make, content_type, fmt, ext):
    pid = create_project(client)
    avatar = upload(client, aws, pid, make(), contentType=content_type)
    assert (avatar["status"], avatar["format"], avatar["width"], avatar["height"]) == ("ready", fmt, 640, 480)
    assert pil(read_object(aws, f"thumbs/alice/{avatar['id']}.jpg")).size == (300, 300)
    assert exists(aws, f"images/alice/{avatar['id']}.{ext}")


def test_sideways_photo_gets_upright_image_and_thumbnail_without_gps(client, aws):
    pid = create_project(client)
    # Stored 800x600 landscape, EXIF orientation 6: the camera was held upright, so it shows 600x800.
    data = img.jpeg(800, 600, exif_orientation=6, gps=True)
    assert pil(data).getexif().get_ifd(0x8825), "the test photo should carry GPS"
    avatar = upload(client, aws, pid, data)
    assert avatar["status"] == "ready"
    assert (avatar["width"], avatar["height"]) == (600, 800)

    stored = pil(read_object(aws, f"images/alice/{avatar['id']}.jpg"))
    assert stored.size == (600, 800)
    exif = stored.getexif()
    assert not exif.get_ifd(0x8825) and 0x8825 not in exif, "GPS left the service"
    assert exif.get(0x0112, 1) == 1, "orientation must be applied, not carried"
    thumb = pil(read_object(aws, f"thumbs/alice/{avatar['id']}.jpg"))
    assert 0x8825 not in thumb.getexif() and thumb.getexif().get(0x0112, 1) == 1
    img.assert_upright(thumb)


@pytest.mark.parametrize("make, content_type", [
    (img.text_as_png, "image/png"),
    (img.truncated_jpeg, "image/jpeg"),
    (img.png_bomb, "image/png"),
])
def test_invalid_file_is_rejected_with_reason_and_deleted(client, aws, make, content_type):
    pid = create_project(client)
    data = make()
    avatar = upload(client, aws, pid, data, contentType=content_type)
    assert avatar["status"] == "rejected"
    assert isinstance(avatar["statusReason"], str) and len(avatar["statusReason"]) > 10
    assert avatar["imageUrl"] is None and avatar["thumbnailUrl"] is None
    assert not exists(aws, f"uploads/alice/{avatar['id']}")
    assert not exists(aws, f"images/alice/{avatar['id']}") and not exists(aws, f"thumbs/alice/{avatar['id']}")
    assert project_count(client, pid) == 0
    assert stats(aws).get("totalAvatars", 0) == 0
    item = table(aws).get_item(Key={"PK": f"U#alice#A#{avatar['id']}", "SK": "META"})["Item"]
    assert "ttl" not in item  # the user sees why until they delete it
    # The service keeps working after a bad file.
    assert upload(client, aws, pid, img.jpeg(400, 400))["status"] == "ready"


def test_object_reported_larger_than_the_limit_is_rejected(client, aws):
    pid = create_project(client)
    created = request_upload(client, pid)
    key = created["upload"]["fields"]["key"]
    put_upload(aws, created, img.jpeg(64, 64))
    receive_one(aws)  # the real notification; replaced by one claiming a size S3 would have refused
    payload = invoke(client, aws, s3_event(aws["UploadBucket"], key, size=10 * MB + 1))
    assert not (payload or {}).get("batchItemFailures")
    avatar = get_avatar(client, created["avatar"]["id"])
    assert avatar["status"] == "rejected" and "10 MB" in avatar["statusReason"]
    assert not exists(aws, key)


def test_duplicate_event_counts_once(client, aws):
    pid = create_project(client)
    created = request_upload(client, pid)
    put_upload(aws, created, img.jpeg(500, 500))
    message = receive_one(aws)
    for _ in range(2):
        payload = invoke(client, aws, message)
        assert not (payload or {}).get("batchItemFailures")
    payload = invoke(client, aws, message, message)  # and twice in one batch
    assert not (payload or {}).get("batchItemFailures")
    assert get_avatar(client, created["avatar"]["id"])["status"] == "ready"
    assert project_count(client, pid) == 1
    s = stats(aws)
    assert (s["totalAvatars"], s["avatarsUploaded"]) == (1, 1)
    day = table(aws).query(KeyConditionExpression="PK = :p AND begins_with(SK, :d)",
                           ExpressionAttributeValues={":p": "U#alice", ":d": "DAY#"})["Items"]
    assert [int(d["uploads"]) for d in day] == [1]


def test_objects_not_belonging_to_an_uploading_avatar_change_nothing(client, aws):
    pid_a = create_project(client, "alice")
    pid_b = create_project(client, "bob")
    bobs = request_upload(client, pid_b, user="bob")
    bob_id = bobs["avatar"]["id"]
    bucket = aws["UploadBucket"]
    # Alice's bytes at a key naming Bob's avatar under her prefix, a key outside uploads/, and
    # a key of the right shape whose avatar does not exist.
    for key in (f"uploads/alice/{bob_id}", f"images/bob/{bob_id}.jpg", "uploads/alice/ava_nope", "uploads/x"):
        s3().put_object(Bucket=bucket, Key=key, Body=img.jpeg(64, 64), ContentType="image/jpeg")
    drain_now(client, aws["UploadQueueUrl"], "upload_worker")
    for key in (f"uploads/bob/{bob_id}",):
        payload = invoke(client, aws, s3_event("some-other-bucket", key))
        assert not (payload or {}).get("batchItemFailures")
    assert get_avatar(client, bob_id, user="bob")["status"] == "uploading"
    assert client.http.get(f"{PREFIX}/avatars/{bob_id}", headers=auth("alice")).status_code == 404
    assert project_count(client, pid_a) == 0 and project_count(client, pid_b, "bob") == 0
    assert stats(aws, "alice").get("totalAvatars", 0) == 0 and stats(aws, "bob").get("totalAvatars", 0) == 0


def test_test_events_and_malformed_messages_are_dropped(client, aws):
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": aws["UploadBucket"]})
    deleted = s3_event(aws["UploadBucket"], "uploads/alice/ava_x", event_name="ObjectRemoved:Delete")
    payload = invoke(client, aws, test_event, "not json", json.dumps({"Records": [{"s3": {}}]}), deleted)
    assert not (payload or {}).get("batchItemFailures")


def test_url_encoded_keys_are_decoded():
    from chalicelib.handlers.uploads import s3_objects

    body_ = s3_event("b", "uploads/alice%40example.com/ava_1+x", size=5)
    assert list(s3_objects(body_)) == [("b", "uploads/alice@example.com/ava_1 x", 5)]


class FlakyStorage:
    """The real Storage, except that reads fail the way S3 does when it throttles."""

    def __init__(self, real, failures):
        self._real, self.failures, self.bucket = real, failures, real.bucket

    def get_if_exists(self, key, max_bytes):
        from botocore.exceptions import ClientError

        if self.failures:
            self.failures -= 1
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
                              "GetObject")
        return self._real.get_if_exists(key, max_bytes)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_transient_s3_error_fails_only_that_record_and_the_retry_succeeds(client, aws):
    from chalicelib.dependencies import get_deps

    pid = create_project(client)
    created = request_upload(client, pid)
    put_upload(aws, created, img.jpeg(320, 240))
    message = receive_one(aws)
    deps = get_deps()
    real = deps.storage
    deps.storage = FlakyStorage(real, failures=1)
    try:
        payload = invoke(client, aws, message)
        assert len(payload["batchItemFailures"]) == 1
        assert get_avatar(client, created["avatar"]["id"])["status"] == "uploading"
        payload = invoke(client, aws, message)  # the queue's redelivery
        assert not payload.get("batchItemFailures")
    finally:
        deps.storage = real
    assert get_avatar(client, created["avatar"]["id"])["status"] == "ready"
    assert project_count(client, pid) == 1


def test_avatar_deleted_before_its_bytes_arrive_is_skipped(client, aws):
    pid = create_project(client)
    created = request_upload(client, pid)
    assert client.http.delete(f"{PREFIX}/avatars/{created['avatar']['id']}", headers=auth()).status_code == 204
    put_upload(aws, created, img.jpeg(100, 100))
    assert drain_now(client, aws["UploadQueueUrl"], "upload_worker") == 1
    assert not exists(aws, f"images/alice/{created['avatar']['id']}")
    assert project_count(client, pid) == 0


# ---- clean-up -----------------------------------------------------------------------------------

def test_abandoned_uploads_expire_by_ttl_and_lifecycle_rule(client, aws):
    ttl = boto3.client("dynamodb", region_name="us-east-1").describe_time_to_live(TableName=aws["TableName"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"
    rules = s3().get_bucket_lifecycle_configuration(Bucket=aws["UploadBucket"])["Rules"]
    upload_rules = [r for r in rules if (r.get("Filter", {}).get("Prefix") or r.get("Prefix")) == "uploads/"]
    assert upload_rules and upload_rules[0]["Expiration"]["Days"] == 1


def test_project_delete_removes_uploaded_avatars_and_their_files(client, aws):
    pid = create_project(client)
    ready = upload(client, aws, pid, img.jpeg(300, 200))
    pending = request_upload(client, pid)["avatar"]
    rejected = upload(client, aws, pid, img.text_as_png(), contentType="image/png")
    assert (ready["status"], rejected["status"]) == ("ready", "rejected")
    assert exists(aws, f"images/alice/{ready['id']}.jpg") and exists(aws, f"thumbs/alice/{ready['id']}.jpg")

    assert client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    assert drain_now(client, aws["CleanupQueueUrl"], "cleanup_worker") == 1
    for avatar in (ready, pending, rejected):
        assert client.http.get(f"{PREFIX}/avatars/{avatar['id']}", headers=auth()).status_code == 404
    assert s3().list_objects_v2(Bucket=aws["UploadBucket"]).get("KeyCount", 0) == 0
    s = stats(aws)
    assert (s["totalAvatars"], s["avatarsUploaded"]) == (0, 0)
