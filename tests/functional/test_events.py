"""Events out over moto: committed writes → the table's stream → the stream handler (fed by
local.streams like Lambda's event source mapping) → EventBridge and the webhook queue → the webhook
worker → a real HTTP receiver on 127.0.0.1 that checks signatures with `standardwebhooks`."""
from __future__ import annotations

import json

import boto3
import pytest

from chalicelib import dependencies
from tests.functional.conftest import PREFIX, auth, body
from tests.support.generation import deliver
from tests.support.webhooks import Receiver

REQUEST = {"prompt": "a friendly portrait", "name": "Mia", "width": 512, "height": 512, "seed": 7}


@pytest.fixture
def env(aws, monkeypatch):
    def set_env(**values):
        for key, value in values.items():
            monkeypatch.setenv(key, str(value))
        dependencies.reset()
    set_env(GENERATION_BACKOFF_SECONDS="0", GENERATION_PROVIDER="offline", WEBHOOK_ALLOW_PRIVATE="1",
            WEBHOOK_RETRY_DELAYS="0,0")
    return set_env


@pytest.fixture
def bus(aws):
    """What reaches the event bus: a rule for our source targeting a queue, as another app would set up."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="other-app-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="other-app", EventBusName=aws["EventBusName"],
                    EventPattern=json.dumps({"source": ["lumiku.avatar-creator"]}))
    events.put_targets(Rule="other-app", EventBusName=aws["EventBusName"], Targets=[{"Id": "inbox", "Arn": arn}])

    def received() -> list[dict]:
        out = []
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return received


@pytest.fixture
def stream(aws):
    """The stream feeder of the local stack, bound to moto."""
    from app import app
    from local.streams import StreamFeeder

    return StreamFeeder(app, None, "us-east-1", table_name=aws["TableName"], client=moto_streams())


def moto_streams():
    # moto routes DynamoDB Streams only for a URL path of "/", which botocore 1.44 no longer sends.
    return boto3.client("dynamodbstreams", region_name="us-east-1",
                        endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com/")


def add_webhook(client, url, user="alice", **fields) -> dict:
    resp = client.http.post(f"{PREFIX}/webhooks", headers=auth(user), body=body({"url": url, **fields}))
    assert resp.status_code == 201, resp.body
    return resp.json_body


def generate_one(client, user="alice") -> dict:
    pid = client.http.post(f"{PREFIX}/projects", headers=auth(user), body=body({"name": "P"})).json_body["id"]
    resp = client.http.post(f"{PREFIX}/projects/{pid}/avatars/generate", headers=auth(user), body=body(REQUEST))
    assert resp.status_code == 202, resp.body
    deliver("generation_worker")
    gen = client.http.get(f"{PREFIX}/generations/{resp.json_body['id']}", headers=auth(user)).json_body
    assert gen["status"] == "completed"
    return gen


def deliveries(client, webhook_id, user="alice") -> list[dict]:
    resp = client.http.get(f"{PREFIX}/webhooks/{webhook_id}/deliveries", headers=auth(user))
    assert resp.status_code == 200, resp.body
    return resp.json_body["items"]


# ---- from the stream to the bus and the webhook -------------------------------------------------

def test_a_completed_generation_reaches_the_bus_and_the_users_webhook_signed(client, env, bus, stream):
    with Receiver() as receiver:
        hook = add_webhook(client, receiver.url)
        receiver.secrets = [hook["secret"]]
        gen = generate_one(client)
        stream.drain()
        deliver("webhook_worker")
        got = receiver.wait_for(2)

    on_bus = bus()
    assert sorted(e["detail-type"] for e in on_bus) == ["avatar.ready", "generation.completed"]
    assert {e["source"] for e in on_bus} == {"lumiku.avatar-creator"}
    completed = next(e["detail"] for e in on_bus if e["detail-type"] == "generation.completed")
    assert completed["data"]["id"] == gen["id"] and completed["data"]["avatarId"] == gen["avatarId"]
    assert completed["id"].startswith("evt_") and completed["timestamp"] == gen["updatedAt"]

    assert sorted(d["event"]["type"] for d in got) == ["avatar.ready", "generation.completed"]
    assert all(d["verified"] == [hook["secret"]] for d in got)  # checked by standardwebhooks
    assert {d["id"] for d in got} == {e["detail"]["id"] for e in on_bus}  # webhook-id = event id
    assert [d["event"] for d in got if d["event"]["type"] == "generation.completed"] == [completed]
    history = deliveries(client, hook["id"])
    assert sorted((d["type"], d["attempt"], d["status"], d["statusCode"]) for d in history) == [
        ("avatar.ready", 1, "delivered", 200), ("generation.completed", 1, "delivered", 200)]
    listed = client.http.get(f"{PREFIX}/webhooks", headers=auth()).json_body["items"]
    assert listed[0]["lastDelivery"]["status"] == "delivered" and "secret" not in listed[0]


def test_one_users_events_never_reach_another_users_webhook(client, env, bus, stream):
    with Receiver() as alice_inbox, Receiver() as bob_inbox:
        alice_hook = add_webhook(client, alice_inbox.url, user="alice")
        add_webhook(client, bob_inbox.url, user="bob")
        generate_one(client, user="alice")
        bob_project = client.http.post(f"{PREFIX}/projects", headers=auth("bob"), body=body({"name": "B"}))
        client.http.delete(f"{PREFIX}/projects/{bob_project.json_body['id']}", headers=auth("bob"))
        stream.drain()
        deliver("webhook_worker")
        alice_got = alice_inbox.wait_for(2)
        bob_got = bob_inbox.wait_for(1)
    assert sorted(d["event"]["type"] for d in alice_got) == ["avatar.ready", "generation.completed"]
    assert all(d["event"]["data"]["userId"] == "alice" for d in alice_got)
    assert [(d["event"]["type"], d["event"]["data"]["userId"]) for d in bob_got] == [("project.deleted", "bob")]
    assert len(deliveries(client, alice_hook["id"])) == 2


def test_a_crash_between_the_write_and_the_publish_still_publishes(client, env, bus, stream, aws):
    """The API publishes nothing itself: the committed write is in the stream, and the handler that
    runs afterwards (even after failing first) publishes it."""
    pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "Doomed"})).json_body["id"]
    assert client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    # The process "crashes" here: nothing was published by the request.
    assert bus() == []

    env(EVENT_BUS_NAME="no-such-bus")  # first stream invocation: the bus refuses the event
    stream.drain()
    assert stream.errors == 0 and bus() == []  # reported as a failed record: the position stays

    env(EVENT_BUS_NAME=aws["EventBusName"])
    stream.drain()
    [event] = [e["detail"] for e in bus()]
    assert event["type"] == "project.deleted" and event["data"]["id"] == pid


def test_a_replayed_stream_record_publishes_the_same_id_and_the_webhook_gets_it_once(client, env, bus, stream):
    from tests.support.webhooks import stream_records

    with Receiver() as receiver:
        add_webhook(client, receiver.url)
        pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "X"})).json_body["id"]
        client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth())
        stream.drain()
        deliver("webhook_worker")
        first = bus()
        # The same records again, as a replay from TRIM_HORIZON would bring them.
        records = stream_records(dependencies.get_deps().settings.table_name, streams=moto_streams())
        client.lambda_.invoke("stream_worker", {"Records": records})
        deliver("webhook_worker")
        again = bus()
        got = receiver.wait_for(2, timeout=1.0)
    assert [e["detail"]["id"] for e in first] == [e["detail"]["id"] for e in again]
    assert [d["event"]["type"] for d in got] == ["project.deleted"]  # delivered once: the marker holds


# ---- retries, giving up, rotation ------------------------------------------------------------------

def test_retries_keep_the_webhook_id_and_the_history_shows_each_attempt(client, env, stream):
    with Receiver() as receiver:
        receiver.script = [500, 503]
        hook = add_webhook(client, receiver.url, events=["project.deleted"])
        receiver.secrets = [hook["secret"]]
        pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "R"})).json_body["id"]
        client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth())
        stream.drain()
        deliver("webhook_worker")
        got = receiver.wait_for(3)
    assert len(got) == 3 and len({d["id"] for d in got}) == 1
    assert all(d["verified"] == [hook["secret"]] for d in got)
    history = deliveries(client, hook["id"])
    assert [(d["attempt"], d["status"], d["statusCode"]) for d in history] == [
        (3, "delivered", 200), (2, "retrying", 503), (1, "retrying", 500)]
    assert {d["eventId"] for d in history} == {got[0]["id"]}


def test_after_the_last_attempt_the_delivery_fails_into_the_dlq(client, env, stream, aws):
    with Receiver() as receiver:
        receiver.script = [500, 500, 500, 500]
        hook = add_webhook(client, receiver.url)
        pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "F"})).json_body["id"]
        client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth())
        stream.drain()
        deliver("webhook_worker")
        assert len(receiver.wait_for(3)) == 3  # the first attempt and the two retries of WEBHOOK_RETRY_DELAYS
    history = deliveries(client, hook["id"])
    assert [(d["attempt"], d["status"]) for d in history] == [(3, "failed"), (2, "retrying"), (1, "retrying")]
    sqs = boto3.client("sqs", region_name="us-east-1")
    [dead] = sqs.receive_message(QueueUrl=aws["WebhookDlqUrl"], MaxNumberOfMessages=10,
                                 MessageAttributeNames=["All"]).get("Messages", [])
    assert json.loads(dead["Body"])["event"]["type"] == "project.deleted"
    assert dead["MessageAttributes"]["rejectReason"]["StringValue"] == "HTTP 500"
    webhook = client.http.get(f"{PREFIX}/webhooks/{hook['id']}", headers=auth()).json_body
    assert webhook["lastDelivery"]["status"] == "failed" and webhook["failingSince"] and webhook["enabled"]


def test_an_endpoint_failing_past_the_limit_is_disabled_with_the_reason(client, env, stream):
    env(WEBHOOK_DISABLE_AFTER_SECONDS="0")  # "5 days" compressed: the first failure is already past it
    with Receiver() as receiver:
        receiver.script = [500] * 10
        hook = add_webhook(client, receiver.url)
        pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "D"})).json_body["id"]
        client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth())
        stream.drain()
        deliver("webhook_worker")
        assert len(receiver.wait_for(2, timeout=1.0)) == 1  # disabled: the queued retry sends nothing
    webhook = client.http.get(f"{PREFIX}/webhooks/{hook['id']}", headers=auth()).json_body
    assert webhook["enabled"] is False and "HTTP 500" in webhook["disabledReason"]
    again = client.http.put(f"{PREFIX}/webhooks/{hook['id']}", headers=auth(), body=body({"enabled": True}))
    assert again.json_body["enabled"] is True and again.json_body["disabledReason"] is None


def test_after_a_rotation_deliveries_are_signed_with_both_secrets(client, env):
    with Receiver() as receiver:
        hook = add_webhook(client, receiver.url)
        rotated = client.http.post(f"{PREFIX}/webhooks/{hook['id']}/rotate-secret", headers=auth())
        assert rotated.status_code == 200 and rotated.json_body["secret"] != hook["secret"]
        receiver.secrets = [hook["secret"], rotated.json_body["secret"]]
        sent = client.http.post(f"{PREFIX}/webhooks/{hook['id']}/test", headers=auth())
        assert sent.status_code == 202
        deliver("webhook_worker")
        [got] = receiver.wait_for(1)
    assert got["event"]["type"] == "webhook.test" and got["id"] == sent.json_body["event"]["id"]
    assert sorted(got["verified"]) == sorted(receiver.secrets) and len(got["signature"].split(" ")) == 2


# ---- the API ----------------------------------------------------------------------------------------

def test_another_users_webhook_is_404_on_every_route(client, env):
    hook = add_webhook(client, "https://93.184.215.14/hook")
    bob = auth("bob")
    base = f"{PREFIX}/webhooks/{hook['id']}"
    answers = [client.http.get(base, headers=bob), client.http.put(base, headers=bob, body=body({"description": "x"})),
               client.http.delete(base, headers=bob), client.http.post(f"{base}/rotate-secret", headers=bob),
               client.http.post(f"{base}/test", headers=bob), client.http.get(f"{base}/deliveries", headers=bob)]
    assert [a.status_code for a in answers] == [404] * 6
    assert all(a.json_body["error"]["code"] == "not_found" for a in answers)
    assert client.http.get(f"{PREFIX}/webhooks", headers=bob).json_body["items"] == []
    mine = client.http.get(base, headers=auth()).json_body
    assert mine["url"] == "https://93.184.215.14/hook" and "secret" not in mine


def test_webhook_secret_format_defaults_and_the_per_user_limit(client, env):
    import base64

    hook = add_webhook(client, "https://93.184.215.14/a", description="crm")
    assert hook["secret"].startswith("whsec_") and len(base64.b64decode(hook["secret"][6:])) >= 24
    assert "webhook.test" not in hook["events"] and "avatar.updated" in hook["events"] and len(hook["events"]) == 12
    for i in range(9):
        add_webhook(client, f"https://93.184.215.14/{i}")
    eleventh = client.http.post(f"{PREFIX}/webhooks", headers=auth(), body=body({"url": "https://93.184.215.14/x"}))
    assert eleventh.status_code == 409 and eleventh.json_body["error"]["code"] == "webhook_limit"
    assert add_webhook(client, "https://93.184.215.14/b", user="bob")  # the limit is per user
    page = client.http.get(f"{PREFIX}/webhooks?limit=4", headers=auth()).json_body
    rest = client.http.get(f"{PREFIX}/webhooks?limit=10&cursor={page['nextCursor']}", headers=auth()).json_body
    assert len(page["items"]) == 4 and len(rest["items"]) == 6
    assert client.http.delete(f"{PREFIX}/webhooks/{hook['id']}", headers=auth()).status_code == 204
    add_webhook(client, "https://93.184.215.14/c")  # a freed place can be taken again


@pytest.mark.parametrize("url,code", [
    ("https://169.254.169.254/latest/meta-data/", "webhook_url_blocked"),
    ("https://0x7f000001/hook", "webhook_url_blocked"),
    ("https://[::ffff:127.0.0.1]/hook", "webhook_url_blocked"),
    ("https://[fd00:ec2::254]/", "webhook_url_blocked"),
    ("http://93.184.215.14/hook", "webhook_url_not_https"),
])
def test_hostile_urls_are_refused_at_registration_and_on_change(client, env, url, code):
    env(WEBHOOK_ALLOW_PRIVATE="0")
    resp = client.http.post(f"{PREFIX}/webhooks", headers=auth(), body=body({"url": url}))
    assert resp.status_code == 400 and resp.json_body["error"]["code"] == code
    hook = add_webhook(client, "https://93.184.215.14/ok")
    changed = client.http.put(f"{PREFIX}/webhooks/{hook['id']}", headers=auth(), body=body({"url": url}))
    assert changed.status_code == 400 and changed.json_body["error"]["code"] == code


def test_unknown_event_types_are_400(client, env):
    resp = client.http.post(f"{PREFIX}/webhooks", headers=auth(),
                            body=body({"url": "https://93.184.215.14/", "events": ["avatar.exploded"]}))
    assert resp.status_code == 400 and resp.json_body["error"]["code"] == "validation_error"


def test_webhook_reads_make_a_fixed_number_of_dynamodb_calls(client, env):
    from chalicelib import clock
    from chalicelib.aws.models import WebhookDeliveryModel, webhook_items_pk
    from tests.support.ddb_calls import DynamoDBCalls

    hooks = [add_webhook(client, f"https://93.184.215.14/{i}") for i in range(10)]
    with WebhookDeliveryModel.batch_write() as batch:  # a long history
        for i in range(500):
            batch.save(WebhookDeliveryModel(webhook_items_pk("alice", hooks[0]["id"]),
                                            f"D#{clock.now_iso()}#evt_{i:026d}#01", event_id=f"evt_{i:026d}",
                                            type="avatar.ready", attempt=1, status="delivered", status_code=200,
                                            duration_ms=5, at=clock.now_iso()))
    seen = {}
    for name, url in {"list": f"{PREFIX}/webhooks", "get": f"{PREFIX}/webhooks/{hooks[0]['id']}",
                      "deliveries": f"{PREFIX}/webhooks/{hooks[0]['id']}/deliveries?limit=50"}.items():
        with DynamoDBCalls() as calls:
            resp = client.http.get(url, headers=auth())
        assert resp.status_code == 200
        seen[name] = calls.names
    assert seen == {"list": ["Query"], "get": ["GetItem"], "deliveries": ["GetItem", "Query"]}
    assert len(resp.json_body["items"]) == 50 and resp.json_body["nextCursor"]


def test_a_user_with_every_slot_taken_waits_without_spending_an_attempt(client, env, aws):
    from chalicelib.events import delivery as webhook_delivery

    env(WEBHOOK_MAX_IN_FLIGHT="2")
    sqs = boto3.client("sqs", region_name="us-east-1")
    slots_pk = webhook_delivery.user_slots_pk("alice")
    with Receiver() as receiver:
        hook = add_webhook(client, receiver.url)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for k in range(2):  # two of alice's deliveries already running (to any of her webhooks)
            ddb.put_item(TableName=aws["TableName"], Item={"PK": {"S": slots_pk}, "SK": {"S": f"SLOT#{k}"},
                                                            "expiresAt": {"N": "9999999999"}})
        assert client.http.post(f"{PREFIX}/webhooks/{hook['id']}/test", headers=auth()).status_code == 202
        deliver("webhook_worker", rounds=1)
        assert receiver.wait_for(1, timeout=0.5) == []
        [waiting] = sqs.receive_message(QueueUrl=aws["WebhookQueueUrl"], MaxNumberOfMessages=10,
                                        VisibilityTimeout=0, WaitTimeSeconds=5).get("Messages", [])
        assert (json.loads(waiting["Body"])["deferred"], json.loads(waiting["Body"])["attempt"]) == (1, 1)

        ddb.delete_item(TableName=aws["TableName"], Key={"PK": {"S": slots_pk}, "SK": {"S": "SLOT#1"}})  # one ends
        deps = dependencies.get_deps()
        assert webhook_delivery.deliver(deps.sqs, deps.dynamodb.client, deps.settings, waiting["Body"]) == "delivered"
        assert len(receiver.wait_for(1)) == 1
    slots = ddb.query(TableName=aws["TableName"], KeyConditionExpression="PK = :pk AND begins_with(SK, :s)",
                      ExpressionAttributeValues={":pk": {"S": slots_pk}, ":s": {"S": "SLOT#"}})["Items"]
    assert sorted(i["SK"]["S"] for i in slots) == ["SLOT#0"]  # its own slot was released


def test_a_retry_later_than_sqs_can_delay_hops_through_the_queue_until_due(client, env, aws):
    import time as _time

    from chalicelib.events import delivery as webhook_delivery

    env(WEBHOOK_RETRY_DELAYS="7200")  # 2 h: longer than SQS's 15-minute DelaySeconds
    sqs = boto3.client("sqs", region_name="us-east-1")
    with Receiver() as receiver:
        receiver.script = [500]
        hook = add_webhook(client, receiver.url)
        client.http.post(f"{PREFIX}/webhooks/{hook['id']}/test", headers=auth())
        deliver("webhook_worker")
        assert len(receiver.wait_for(1)) == 1

        def queued() -> tuple[int, int]:
            attrs = sqs.get_queue_attributes(QueueUrl=aws["WebhookQueueUrl"], AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesDelayed"])
        assert queued() == (0, 1)  # the retry waits in the queue, invisible

        deps = dependencies.get_deps()
        retry = webhook_delivery.message("alice", hook["id"], {"id": "evt_x", "type": "webhook.test",
                                                               "timestamp": "t", "data": {}}, 2, _time.time() + 7000)
        # Woken early (after one 15-minute hop): it goes back to wait, spending no attempt.
        assert webhook_delivery.deliver(deps.sqs, deps.dynamodb.client, deps.settings, json.dumps(retry)) == "waiting"
        assert queued() == (0, 2) and len(receiver.deliveries) == 1
        due = {**retry, "notBefore": _time.time() - 1}
        assert webhook_delivery.deliver(deps.sqs, deps.dynamodb.client, deps.settings, json.dumps(due)) == "delivered"
    assert [d["attempt"] for d in deliveries(client, hook["id"])] == [2, 1]


def test_renaming_an_avatar_announces_updated_and_using_it_announces_nothing(client, env, stream):
    with Receiver() as receiver:
        hook = add_webhook(client, receiver.url, events=["avatar.updated", "avatar.deleted"])
        receiver.secrets = [hook["secret"]]
        gen = generate_one(client)
        avatar_id = gen["avatarId"]
        renamed = client.http.put(f"{PREFIX}/avatars/{avatar_id}", headers=auth(), body=body({"name": "Mia B."}))
        assert renamed.status_code == 200, renamed.body
        used = client.http.post(f"{PREFIX}/avatars/{avatar_id}/usage", headers=auth(), body=body(
            {"appId": "pose-generator", "appName": "Pose Generator", "action": "pose.generated"}))
        assert used.status_code in (200, 201, 202), used.body
        assert client.http.delete(f"{PREFIX}/avatars/{avatar_id}", headers=auth()).status_code == 204
        stream.drain()
        deliver("webhook_worker")
        got = receiver.wait_for(3, timeout=1.0)
    assert [(d["event"]["type"], d["event"]["data"]["name"]) for d in got] == [
        ("avatar.updated", "Mia B."), ("avatar.deleted", "Mia B.")]
    assert all(d["verified"] == receiver.secrets for d in got)
    assert got[1]["event"]["data"]["usageCount"] == 1  # the use happened; it announced nothing itself
