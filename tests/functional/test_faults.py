"""Faults in the middle of multi-step operations: a DynamoDB or S3 call fails once (a botocore
event hook raises, as a throttle or a network cut would), the message is redelivered, and in the
end every record is exact — no duplicate avatar, no lost count, no orphaned file."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from tests.functional.conftest import PREFIX, auth, body
from tests.support import images as img
from tests.support.botocore_hooks import Hooked
from tests.support.generation import deliver


class FailOnce(Hooked):
    """Raise on the first `operation` call made through botocore (any client), then let calls pass."""

    def __init__(self, service: str, operation: str):
        super().__init__(f"before-call.{service}.{operation}", self, clients=_live_clients)
        self.failed = 0

    def __call__(self, **kwargs):
        if self.failed == 0:
            self.failed += 1
            raise EndpointConnectionError(endpoint_url="injected-fault")


def _live_clients():
    from tests.support.ddb_calls import _existing_clients

    from chalicelib.dependencies import get_deps

    deps = get_deps()
    return _existing_clients() + [deps.s3, deps.sqs]


@pytest.fixture
def offline(aws, monkeypatch):
    from chalicelib import dependencies

    monkeypatch.setenv("GENERATION_PROVIDER", "offline")
    monkeypatch.setenv("GENERATION_BACKOFF_SECONDS", "0")
    dependencies.reset()


def project(client) -> str:
    return client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "F"})).json_body["id"]


@pytest.mark.parametrize("service, operation", [("dynamodb", "TransactWriteItems"), ("s3", "PutObject"),
                                                ("dynamodb", "UpdateItem")])
def test_generation_survives_a_failed_call_mid_job_with_exactly_one_avatar(client, offline, aws, service, operation):
    pid = project(client)
    gen = client.http.post(f"{PREFIX}/projects/{pid}/avatars/generate", headers=auth(),
                           body=body({"prompt": "a face", "name": "G"})).json_body
    with FailOnce(service, operation) as fault:
        deliver("generation_worker", rounds=1, expire_failed=True)
    assert fault.failed == 1
    deliver("generation_worker")
    done = client.http.get(f"{PREFIX}/generations/{gen['id']}", headers=auth()).json_body
    assert done["status"] == "completed", done
    avatars = client.http.get(f"{PREFIX}/projects/{pid}/avatars", headers=auth()).json_body["items"]
    assert len(avatars) == 1
    stats = client.http.get(f"{PREFIX}/stats", headers=auth()).json_body
    assert (stats["totalAvatars"], stats["activeGenerations"]) == (1, 0)
    assert client.http.get(f"{PREFIX}/projects/{pid}", headers=auth()).json_body["avatarCount"] == 1


def test_upload_survives_a_failed_thumbnail_write(client, offline, aws):
    pid = project(client)
    data = img.jpeg(300, 300)
    created = client.http.post(f"{PREFIX}/projects/{pid}/avatars/upload", headers=auth(),
                               body=body({"name": "U", "contentType": "image/jpeg", "size": len(data)})).json_body
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=aws["UploadBucket"], Key=created["upload"]["fields"]["key"],
                                                           Body=data)
    with FailOnce("s3", "PutObject"):
        deliver("upload_worker", rounds=1, expire_failed=True)
    deliver("upload_worker")
    avatar = client.http.get(f"{PREFIX}/avatars/{created['avatar']['id']}", headers=auth()).json_body
    assert avatar["status"] == "ready"
    stats = client.http.get(f"{PREFIX}/stats", headers=auth()).json_body
    assert stats["totalAvatars"] == 1 and stats["bySourceType"]["uploaded"] == 1


def test_project_delete_finishes_after_a_failed_file_delete(client, offline, aws):
    pid = project(client)
    data = img.jpeg(200, 200)
    created = client.http.post(f"{PREFIX}/projects/{pid}/avatars/upload", headers=auth(),
                               body=body({"name": "D", "contentType": "image/jpeg", "size": len(data)})).json_body
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=aws["UploadBucket"], Key=created["upload"]["fields"]["key"], Body=data)
    deliver("upload_worker")
    assert client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    with FailOnce("s3", "DeleteObjects"):
        deliver("cleanup_worker", rounds=1, expire_failed=True)
    deliver("cleanup_worker")
    assert s3.list_objects_v2(Bucket=aws["UploadBucket"]).get("KeyCount", 0) == 0
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws["TableName"])
    leftovers = [i for i in table.scan()["Items"] if i["PK"].startswith("U#alice#")]  # test inspection only
    assert leftovers == []
    assert client.http.get(f"{PREFIX}/stats", headers=auth()).json_body["totalAvatars"] == 0
