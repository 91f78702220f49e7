"""The embedded local stack (`make run`): provisioning from infra/resources.json, persistence across
restarts, the page and config, dev sign-in, and API Gateway's error mapping."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from tests.support.local_stack import API_PREFIX, OUTPUT_KEYS, ROOT, LocalStack, free_port, http

ERROR_401 = {"error": {"code": "unauthorized", "message": "Missing or invalid bearer token", "details": {}}}
ERROR_404 = {"error": {"code": "not_found", "message": "No such route", "details": {}}}


# ---- provisioning --------------------------------------------------------------------------

def test_outputs_json_has_every_key(local_stack):
    outputs = json.loads((local_stack.data_dir / "outputs.json").read_text())
    assert set(OUTPUT_KEYS) <= set(outputs)
    assert all(outputs[k] for k in OUTPUT_KEYS)
    assert outputs["ApiUrl"] == local_stack.base_url
    assert outputs["AwsEndpoint"] == local_stack.aws_endpoint
    assert outputs["Region"] == "us-east-1"
    assert outputs["UploadBucket"] == "avatar-creator-uploads-000000000000-us-east-1"


def test_table_has_its_indexes_and_ttl(local_stack):
    ddb = local_stack.client("dynamodb")
    table = ddb.describe_table(TableName=local_stack.outputs["TableName"])["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"PK": "HASH", "SK": "RANGE"}
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"GSI1", "GSI2", "GSI3"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=local_stack.outputs["TableName"])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert local_stack.outputs["TableName"] == "avatar-creator"  # the local stack's name (local/provision.py)


def test_bucket_cors_and_upload_notification(local_stack):
    s3 = local_stack.client("s3")
    bucket = local_stack.outputs["UploadBucket"]
    rule, = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rule["AllowedOrigins"] == ["*"]  # local/provision.py LOCAL_PARAMETERS (no default on AWS)
    assert set(rule["AllowedMethods"]) == {"POST", "GET", "HEAD"}
    assert rule["ExposeHeaders"] == ["ETag"]
    config, = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert config["QueueArn"].endswith(":avatar-creator-uploads")
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "uploads/"}]


@pytest.mark.parametrize("queue, dlq, max_receive", [
    ("UploadQueueUrl", "UploadDlqUrl", 3), ("GenerationQueueUrl", "GenerationDlqUrl", 3),
    ("UsageEventsQueueUrl", "UsageEventsDlqUrl", 3), ("CleanupQueueUrl", "CleanupDlqUrl", 3),
])
def test_queues_redrive_to_their_dlq(local_stack, queue, dlq, max_receive):
    sqs = local_stack.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=local_stack.outputs[queue], AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=local_stack.outputs[dlq],
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn
    assert int(redrive["maxReceiveCount"]) == max_receive
    assert attrs["VisibilityTimeout"] == "3"  # LOCAL_VISIBILITY_TIMEOUT


def test_provisioning_again_changes_nothing(local_stack):
    from local.provision import provision

    changes: list[str] = []
    outputs = provision(local_stack.aws_endpoint, "us-east-1", api_url=local_stack.base_url,
                        visibility_timeout=3, changes=changes)
    assert changes == []  # no update, and no new s3:TestEvent into the upload queue
    assert {k: outputs[k] for k in OUTPUT_KEYS} == {k: local_stack.outputs[k] for k in OUTPUT_KEYS}


def test_second_stack_on_a_taken_port_fails_clearly(local_stack, tmp_path):
    env = LocalStack(tmp_path, port=free_port(), aws_port=local_stack.aws_port).env()
    result = subprocess.run([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1
    assert f"port {local_stack.aws_port} on 127.0.0.1 is already in use" in result.stderr


def test_restart_keeps_table_items_and_objects(tmp_path):
    stack = LocalStack(tmp_path / "data").start()
    ddb, s3 = stack.client("dynamodb"), stack.client("s3")
    ddb.put_item(TableName=stack.outputs["TableName"],
                 Item={"PK": {"S": "USER#persist"}, "SK": {"S": "PROFILE"}, "n": {"N": "7"}})
    s3.put_object(Bucket=stack.outputs["UploadBucket"], Key="images/persist/a.txt", Body=b"kept")
    stopping = time.monotonic()
    assert stack.stop() == 0  # SIGTERM → clean exit
    assert time.monotonic() - stopping < 10
    assert "Persistence: saved dynamodb state" in (tmp_path / "data" / "ministack.log").read_text()

    again = LocalStack(tmp_path / "data", port=stack.port, aws_port=stack.aws_port)
    with again:
        ddb, s3 = again.client("dynamodb"), again.client("s3")
        item = ddb.get_item(TableName=again.outputs["TableName"],
                            Key={"PK": {"S": "USER#persist"}, "SK": {"S": "PROFILE"}})["Item"]
        assert item["n"] == {"N": "7"}
        body = s3.get_object(Bucket=again.outputs["UploadBucket"], Key="images/persist/a.txt")["Body"].read()
        assert body == b"kept"
        assert "provisioned infra/resources.json: 0 change(s)" in again.log_tail(200)
        sqs = again.client("sqs")
        counts = sqs.get_queue_attributes(QueueUrl=again.outputs["UploadQueueUrl"], AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    assert again.proc is None


# ---- page, config, dev sign-in -------------------------------------------------------------

def test_page_is_served_at_root(local_stack):
    resp = http("GET", local_stack.url("/"))
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert b"<html" in resp.body.lower()
    assert http("HEAD", local_stack.url("/index.html")).body == b""


@pytest.mark.parametrize("path", ["/nope.js", "/../Makefile", "/%2e%2e/Makefile", "/.env", "/web/index.html"])
def test_unknown_or_escaping_paths_are_404_json(local_stack, path):
    resp = http("GET", local_stack.url(path))
    assert resp.status == 404
    assert resp.json()["error"]["code"] == "not_found"


def test_config_json_points_the_page_at_the_api(local_stack):
    resp = http("GET", local_stack.url("/config.json"))
    assert resp.status == 200
    assert resp.json() == {"apiUrl": local_stack.base_url, "stage": "local", "devLogin": True}


def test_dev_token_verifies_with_the_stack_secret(local_stack):
    from chalicelib.auth import verify_token

    resp = http("POST", local_stack.url("/_local/token"), {"userId": "alice"})
    assert resp.status == 200
    assert verify_token(resp.json()["token"], secret=local_stack.jwt_secret).user_id == "alice"
    bad = http("POST", local_stack.url("/_local/token"), {"userId": "no spaces"})
    assert bad.status == 400 and bad.json()["error"]["code"] == "validation_error"


# ---- API Gateway behaviour -----------------------------------------------------------------

def test_health_is_public(local_stack):
    resp = http("GET", local_stack.api("/health"))
    assert resp.status == 200
    assert resp.json()["stage"] == "local"


@pytest.mark.parametrize("method, path", [
    ("GET", f"{API_PREFIX}/no-such-route"), ("GET", "/api/elsewhere"), ("DELETE", f"{API_PREFIX}/health"),
])
def test_unknown_route_is_404_error_shape(local_stack, method, path):
    for token in (None, local_stack.token("alice")):
        resp = local_stack.request(method, path, token=token)
        assert resp.status == 404, resp
        assert resp.json() == ERROR_404


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic abc"])
def test_missing_or_bad_token_is_401_error_shape(local_stack, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    resp = local_stack.request("GET", f"{API_PREFIX}/projects", headers=headers)
    assert resp.status == 401, resp
    assert resp.json() == ERROR_401
    assert resp.headers["access-control-allow-origin"] == "*"


def test_expired_or_foreign_token_is_401(local_stack):
    from chalicelib.auth import issue_token

    for token in (local_stack.token("alice", ttl_seconds=-600), issue_token("alice", secret="x" * 40)):
        resp = local_stack.request("GET", f"{API_PREFIX}/projects", token=token)
        assert resp.status == 401 and resp.json() == ERROR_401


def test_valid_token_reaches_the_app(local_stack):
    resp = local_stack.request("GET", f"{API_PREFIX}/projects", token=local_stack.token("stack-user"))
    assert resp.status == 200, resp


def test_body_over_1_mib_is_413_before_the_app(local_stack):
    resp = local_stack.request("POST", f"{API_PREFIX}/projects", b"x" * (1024 * 1024 + 1),
                               token=local_stack.token("alice"), headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert resp.json()["error"]["code"] == "payload_too_large"


# ---- the static server in process (content types, traversal) -------------------------------

@pytest.fixture
def static_server(tmp_path):
    from chalice import Chalice

    from local.server import LocalServer, Site

    web = tmp_path / "web"
    (web / "js").mkdir(parents=True)
    files = {"index.html": b"<html></html>", "js/app.js": b"export {}", "js/mod.mjs": b"export {}",
             "style.css": b"body{}", "logo.svg": b"<svg/>", "icon.png": b"\x89PNG\r\n\x1a\n",
             ".secret": b"no"}
    for name, data in files.items():
        (web / name).write_bytes(data)
    (tmp_path / "outside.txt").write_text("outside")
    server = LocalServer(Chalice("static-test"), Site(api_url="http://x", jwt_secret="s" * 32, web_dir=web,
                                                       access_log=False), port=0).start()
    yield server
    server.stop()


@pytest.mark.parametrize("path, content_type", [
    ("/", "text/html"), ("/index.html", "text/html"), ("/js/app.js", "text/javascript"),
    ("/js/mod.mjs", "text/javascript"), ("/style.css", "text/css"), ("/logo.svg", "image/svg+xml"),
    ("/icon.png", "image/png"),
])
def test_static_content_types(static_server, path, content_type):
    resp = http("GET", static_server.url + path)
    assert resp.status == 200
    assert resp.headers["content-type"].split(";")[0] == content_type


@pytest.mark.parametrize("path", ["/.secret", "/../outside.txt", "/%2e%2e/outside.txt", "/js/../../outside.txt",
                                  "/js/", "/%00", "/..%2foutside.txt"])
def test_static_never_leaves_web_dir(static_server, path):
    # http.client would normalise nothing, but send the raw path to be sure
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", static_server.port, timeout=5)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 404
    assert json.loads(resp.read())["error"]["code"] == "not_found"
    conn.close()


def test_requests_are_served_concurrently(static_server):
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(http("GET", static_server.url + "/").status))
               for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 20
