"""The packaged stack (`make package` output) deployed into ministack's CloudFormation and driven
through its API Gateway, Lambda authorizer, S3 notifications, queues and event source mappings —
every function a Python 3.12 subprocess running the deployment zip with the layer, under its own
execution role with IAM enforced (AUTH=true): a permission missing from a policy fails here.

One step is not ministack's own: it ignores the RestApi body's gateway responses on import, so
`infra.packaged_stack.apply_gateway_responses` puts the same responses (read from the stack's
processed template) through the API Gateway API and redeploys the stage. See its docstring."""
from __future__ import annotations

import io
import time
import uuid

import pytest
import requests

from infra.packaged_stack import API_STAGE, PackagedStack
from tests.support.infra import build_package
from tests.support.uploads import browser_post

API = "/api/apps/avatar-creator"
UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "Missing or invalid bearer token", "details": {}}}
# Cold starts of the worker (layer extraction, Pillow import) and the queue poll, on a busy CI machine.
READY_WITHIN = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    build = build_package("prod")
    stack = PackagedStack(build, tmp_path_factory.mktemp("packaged-stack"), auth=True).start()
    try:
        yield stack
    finally:
        stack.stop()


def call(stack, method, path, user=None, token=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if user:
        headers["Authorization"] = f"Bearer {stack.token(user)}"
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, stack.api_base + API + path, headers=headers, timeout=30, **kwargs)


def new_user() -> str:
    return f"pk-{uuid.uuid4().hex[:10]}"


def jpeg(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (180, 90, 40)).save(out, "JPEG", quality=85)
    return out.getvalue()


def test_outputs_name_the_same_resources_as_the_local_stack(stack):
    from local.provision import OUTPUT_KEYS

    out = stack.outputs
    assert set(OUTPUT_KEYS) - {"AwsEndpoint", "Region"} <= set(out)
    assert out["ApiUrl"] == f"https://{out['RestAPIId']}.execute-api.us-east-1.amazonaws.com/{API_STAGE}"
    # Every name is the stack's (avatar-creator-prod) plus a suffix: stages side by side.
    assert out["UploadBucket"] == "avatar-creator-prod-uploads-000000000000-us-east-1"
    assert out["TableName"] == "avatar-creator-prod"
    assert out["UploadQueueUrl"].endswith("/avatar-creator-prod-uploads")
    assert out["GenerationMaxAttempts"] == "3"
    assert out["JwtSecretArn"].startswith("arn:aws:secretsmanager:us-east-1:000000000000:secret:")


def test_health_answers_through_api_gateway_without_a_token(stack):
    resp = call(stack, "GET", "/health")
    assert resp.status_code == 200, resp.text
    assert resp.json()["stage"] == "prod"  # the prod stage's environment, from .chalice/config.json


@pytest.mark.parametrize("token", [None, "not-a-jwt"])
def test_missing_or_invalid_tokens_are_refused_with_401_in_the_error_shape(stack, token):
    resp = call(stack, "GET", "/projects", token=token)
    assert resp.status_code == 401, resp.text
    assert resp.json() == UNAUTHORIZED
    assert resp.headers["access-control-allow-origin"] == "*"


def test_token_signed_with_another_secret_is_refused(stack):
    from chalicelib.auth import issue_token

    forged = issue_token("mallory", secret="not-the-secret-in-secrets-manager-0123456789")
    resp = call(stack, "GET", "/projects", token=forged)
    assert resp.status_code == 401 and resp.json() == UNAUTHORIZED


def test_unknown_route_is_404_not_found(stack):
    resp = call(stack, "GET", "/no-such-thing", user=new_user())
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] == "not_found"


def test_upload_becomes_a_ready_avatar_with_a_thumbnail(stack):
    """API → presigned POST → S3 → upload queue → upload worker → DynamoDB + thumbnail in S3."""
    user = new_user()
    created = call(stack, "POST", "/projects", user, json={"name": "Packaged"})
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    data = jpeg(1600, 1200)
    asked = call(stack, "POST", f"/projects/{project_id}/avatars/upload", user,
                 json={"name": "Portrait", "contentType": "image/jpeg", "size": len(data)})
    assert asked.status_code == 201, asked.text
    ticket, avatar_id = asked.json()["upload"], asked.json()["avatar"]["id"]
    posted = browser_post(ticket["url"], ticket["fields"], data)
    assert posted.status_code in (200, 201, 204), posted.text

    deadline = time.monotonic() + READY_WITHIN
    avatar = call(stack, "GET", f"/avatars/{avatar_id}", user).json()
    while avatar.get("status") == "uploading" and time.monotonic() < deadline:
        time.sleep(0.25)
        avatar = call(stack, "GET", f"/avatars/{avatar_id}", user).json()
    assert avatar.get("status") == "ready", (avatar, stack.function_logs(60))
    assert (avatar["width"], avatar["height"], avatar["format"]) == (1600, 1200, "JPEG")

    thumb = requests.get(avatar["thumbnailUrl"], timeout=30)
    assert thumb.status_code == 200, thumb.text
    from PIL import Image

    assert Image.open(io.BytesIO(thumb.content)).size == (300, 300)
    listed = call(stack, "GET", f"/projects/{project_id}/avatars", user).json()
    assert [a["id"] for a in listed["items"]] == [avatar_id]
    # The original is removed once processed (the upload worker's DeleteObject on uploads/).
    s3 = stack.client("s3")
    left = s3.list_objects_v2(Bucket=stack.outputs["UploadBucket"], Prefix=f"uploads/{user}/")
    assert left.get("KeyCount", 0) == 0


def test_another_users_project_is_404(stack):
    owner, other = new_user(), new_user()
    project_id = call(stack, "POST", "/projects", owner, json={"name": "Mine"}).json()["id"]
    resp = call(stack, "GET", f"/projects/{project_id}", other)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert call(stack, "GET", f"/projects/{project_id}", owner).status_code == 200


def test_function_roles_are_enforced_by_the_emulator(stack):
    """The smoke flow proves each policy is enough only if the emulator enforces it: the upload
    worker's role may not read the JWT secret, and ministack says so."""
    from botocore.exceptions import ClientError

    iam = stack.client("iam")
    role = next(r for r in iam.list_roles()["Roles"] if "UploadWorkerRole" in r["RoleName"])
    creds = stack.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="probe")["Credentials"]
    import boto3

    as_worker = boto3.client("secretsmanager", endpoint_url=stack.endpoint_url, region_name="us-east-1",
                             aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                             aws_session_token=creds["SessionToken"])
    with pytest.raises(ClientError) as denied:
        as_worker.get_secret_value(SecretId=stack.outputs["JwtSecretArn"])
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    table = boto3.client("dynamodb", endpoint_url=stack.endpoint_url, region_name="us-east-1",
                         aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"])
    # allowed: no raise
    table.get_item(TableName=stack.outputs["TableName"], Key={"PK": {"S": "x"}, "SK": {"S": "y"}})


def test_an_export_runs_under_the_export_workers_own_role(stack):
    """API → export queue → export worker (GetObject on images/…, multipart PutObject under exports/,
    its own queue) → GET /exports/{id} → the presigned zip: every call under the roles of
    .chalice/policy-*.json with IAM enforced."""
    import zipfile

    user = new_user()
    project_id = call(stack, "POST", "/projects", user, json={"name": "Export"}).json()["id"]
    data = jpeg(800, 600)
    asked = call(stack, "POST", f"/projects/{project_id}/avatars/upload", user,
                 json={"name": "Portrait", "contentType": "image/jpeg", "size": len(data)}).json()
    assert browser_post(asked["upload"]["url"], asked["upload"]["fields"], data).status_code in (200, 201, 204)
    avatar_id = asked["avatar"]["id"]
    deadline = time.monotonic() + READY_WITHIN
    while call(stack, "GET", f"/avatars/{avatar_id}", user).json().get("status") != "ready":
        assert time.monotonic() < deadline, stack.function_logs(60)
        time.sleep(0.25)

    started = call(stack, "POST", f"/projects/{project_id}/export", user)
    assert started.status_code == 202, started.text
    export_id = started.json()["id"]
    deadline = time.monotonic() + READY_WITHIN
    export = started.json()
    while export["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        export = call(stack, "GET", f"/exports/{export_id}", user).json()
    assert export["status"] == "completed", (export, stack.function_logs(60))
    zipped = requests.get(export["downloadUrl"], timeout=30)
    assert zipped.status_code == 200, zipped.text
    archive = zipfile.ZipFile(io.BytesIO(zipped.content))
    assert archive.testzip() is None and "manifest.json" in archive.namelist()
    assert any(name.endswith("/original.jpg") for name in archive.namelist())
    assert call(stack, "GET", f"/exports/{export_id}", new_user()).status_code == 404
