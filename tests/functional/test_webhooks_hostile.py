"""Issue 26: webhook deliveries under hostile use stay fair, recorded and in one retry chain (moto).

GIVEN / WHEN / THEN in each test; time is an input (`now=` of deliver), no sleeps."""
from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

from chalicelib import dependencies
from tests.functional.conftest import PREFIX, auth, body
from tests.functional.test_events import add_webhook, deliveries, env  # noqa: F401 - fixture
from tests.support.generation import deliver
from tests.support.webhooks import Receiver


def queued(queue_url: str, expect: int = 0, timeout: float = 5.0) -> list[dict]:
    """What the queue holds (delayed messages too: waits until `expect` arrived, at most `timeout`)."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                   WaitTimeSeconds=0, MessageAttributeNames=["All"]).get("Messages", [])
        out += msgs
        if not msgs and (len(out) >= expect or time.monotonic() > deadline):
            return out
        if not msgs:
            time.sleep(0.05)


def hook_message(user: str, webhook_id: str, attempt: int = 1, event_id: str = "evt_t1") -> str:
    from chalicelib.events import delivery as webhook_delivery

    event = {"id": event_id, "type": "webhook.test", "timestamp": "2026-12-07T10:00:00.000Z",
             "data": {"webhookId": webhook_id, "userId": user, "message": "x"}}
    return json.dumps(webhook_delivery.message(user, webhook_id, event, attempt))


def run(raw: str, **kwargs) -> str:
    from chalicelib.events import delivery as webhook_delivery

    deps = dependencies.get_deps()
    return webhook_delivery.deliver(deps.sqs, deps.dynamodb.client, deps.settings, raw, **kwargs)


# ---- fair sharing -------------------------------------------------------------------------------

def test_a_users_deliveries_in_flight_are_capped_across_all_their_webhooks_and_others_pass(client, env, aws):
    from chalicelib.events import delivery as webhook_delivery

    env(WEBHOOK_MAX_IN_FLIGHT="2")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    with Receiver() as alice_inbox, Receiver() as bob_inbox:
        a1 = add_webhook(client, alice_inbox.url + "1")
        a2 = add_webhook(client, alice_inbox.url + "2")
        b1 = add_webhook(client, bob_inbox.url, user="bob")
        # GIVEN two of alice's deliveries running (to her first webhook): her whole share
        for k in range(2):
            ddb.put_item(TableName=aws["TableName"], Item={
                "PK": {"S": webhook_delivery.user_slots_pk("alice")}, "SK": {"S": f"SLOT#{k}"},
                "expiresAt": {"N": str(int(time.time()) + 60)}})
        # WHEN a delivery to her *other* webhook and one to bob's come in
        assert run(hook_message("alice", a2["id"])) == "deferred"
        assert run(hook_message("bob", b1["id"])) == "delivered"
        # THEN alice's waits (no attempt spent), bob's is not held up
        assert alice_inbox.deliveries == [] and len(bob_inbox.wait_for(1)) == 1
    [waiting] = queued(aws["WebhookQueueUrl"], expect=1)
    assert json.loads(waiting["Body"])["attempt"] == 1 and json.loads(waiting["Body"])["deferred"] == 1
    assert deliveries(client, a2["id"]) == [] and a1


def test_a_fast_answer_does_not_let_a_user_past_the_cap(client, env, aws):
    from chalicelib.events import delivery as webhook_delivery

    env(WEBHOOK_MAX_IN_FLIGHT="1")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    with Receiver() as inbox:
        hook = add_webhook(client, inbox.url)
        assert run(hook_message("alice", hook["id"], event_id="evt_fast")) == "delivered"  # fast 2xx
        ddb.put_item(TableName=aws["TableName"], Item={
            "PK": {"S": webhook_delivery.user_slots_pk("alice")}, "SK": {"S": "SLOT#0"},
            "expiresAt": {"N": str(int(time.time()) + 60)}})
        assert run(hook_message("alice", hook["id"], event_id="evt_next")) == "deferred"


def test_one_webhook_never_takes_the_last_of_its_users_slots(client, env, aws):
    from chalicelib.events import delivery as webhook_delivery

    env(WEBHOOK_MAX_IN_FLIGHT="3")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    with Receiver() as inbox:
        slow = add_webhook(client, inbox.url + "slow")
        fast = add_webhook(client, inbox.url + "fast")
        # GIVEN alice's slow webhook holding two of her three slots
        for k in range(2):
            ddb.put_item(TableName=aws["TableName"], Item={
                "PK": {"S": webhook_delivery.user_slots_pk("alice")}, "SK": {"S": f"SLOT#{k}"},
                "expiresAt": {"N": str(int(time.time()) + 60)}, "webhookId": {"S": slow["id"]}})
        # WHEN another delivery to it and one to her other webhook come in
        # THEN the slow one waits and the other takes the last slot
        assert run(hook_message("alice", slow["id"], event_id="evt_s")) == "deferred"
        assert run(hook_message("alice", fast["id"], event_id="evt_f")) == "delivered"


def test_the_test_route_allows_five_per_minute_per_webhook_then_429_with_retry_after(client, env):
    hook = add_webhook(client, "https://93.184.215.14/a")
    other = add_webhook(client, "https://93.184.215.14/b")
    answers = [client.http.post(f"{PREFIX}/webhooks/{hook['id']}/test", headers=auth()) for _ in range(7)]
    assert [a.status_code for a in answers] == [202] * 5 + [429] * 2
    limited = answers[-1]
    assert limited.json_body["error"]["code"] in ("rate_limited", "quota_exceeded")
    assert set(limited.json_body["error"]) == {"code", "message", "details"}
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # per webhook: another one of the same user still gets its five
    assert client.http.post(f"{PREFIX}/webhooks/{other['id']}/test", headers=auth()).status_code == 202


# ---- non-ASCII URLs, every exception recorded with a code ---------------------------------------

def test_a_non_ascii_url_is_stored_normalised_and_delivered(client, env):
    with Receiver(path="/h") as inbox:
        hook = add_webhook(client, inbox.url.replace("/h", "/é") + "?q=ü")
        assert hook["url"].endswith("/%C3%A9?q=%C3%BC")
        assert client.http.post(f"{PREFIX}/webhooks/{hook['id']}/test", headers=auth()).status_code == 202
        deliver("webhook_worker")
        [got] = inbox.wait_for(1)
    assert got["path"] == "/%C3%A9?q=%C3%BC"
    assert deliveries(client, hook["id"])[0]["status"] == "delivered"


def test_a_stored_non_ascii_url_is_normalised_at_delivery(client, env):
    from chalicelib.aws.models import WebhookModel, user_pk, webhook_sk

    with Receiver(path="/h") as inbox:
        hook = add_webhook(client, inbox.url)
        stored = inbox.url.replace("/h", "/é")  # as a webhook saved before the fix may hold it
        WebhookModel(user_pk("alice"), webhook_sk(hook["id"])).update(actions=[WebhookModel.url.set(stored)])
        assert run(hook_message("alice", hook["id"])) == "delivered"
        [got] = inbox.wait_for(1)
    assert got["path"] == "/%C3%A9"
    assert client.http.get(f"{PREFIX}/webhooks/{hook['id']}", headers=auth()).json_body["url"].endswith("/%C3%A9")


def test_a_stored_url_that_cannot_be_called_is_a_recorded_attempt_and_disables_the_webhook(client, env):
    from chalicelib.aws.models import WebhookModel, user_pk, webhook_sk

    hook = add_webhook(client, "https://93.184.215.14/a")
    WebhookModel(user_pk("alice"), webhook_sk(hook["id"])).update(
        actions=[WebhookModel.url.set("https://93.184.215.14/a#frag")])
    assert run(hook_message("alice", hook["id"])) == "failed"
    [attempt] = deliveries(client, hook["id"])
    assert attempt["errorCode"] == "url_invalid" and attempt["status"] == "failed"
    webhook = client.http.get(f"{PREFIX}/webhooks/{hook['id']}", headers=auth()).json_body
    assert webhook["enabled"] is False and "URL" in webhook["disabledReason"]


def test_any_exception_in_the_request_is_a_recorded_attempt_with_a_code_and_is_retried(client, env, aws):
    def broken_post(*_args, **_kwargs):
        raise UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range(128)")

    hook = add_webhook(client, "https://93.184.215.14/a")
    assert run(hook_message("alice", hook["id"]), post=broken_post) == "retrying"
    [attempt] = deliveries(client, hook["id"])
    assert attempt["status"] == "retrying" and attempt["errorCode"] == "internal_error"
    assert "Unicode" not in attempt["error"] and "ascii" not in attempt["error"]
    webhook = client.http.get(f"{PREFIX}/webhooks/{hook['id']}", headers=auth()).json_body
    assert webhook["failingSince"] and webhook["lastDelivery"]["errorCode"] == "internal_error"
    [retry] = queued(aws["WebhookQueueUrl"])
    assert json.loads(retry["Body"])["attempt"] == 2


def test_connection_errors_name_no_socket_internals(client, env):
    import socket

    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    hook = add_webhook(client, f"http://127.0.0.1:{dead.getsockname()[1]}/h")
    assert run(hook_message("alice", hook["id"])) == "retrying"
    dead.close()
    [attempt] = deliveries(client, hook["id"])
    assert attempt["errorCode"] == "connection_failed" and "Errno" not in attempt["error"]
    assert "ConnectionRefused" not in attempt["error"]


# ---- one retry chain per delivery -----------------------------------------------------------------

def _fail_once(client_, operation: str, matches) -> list:
    """A botocore hook on the real client: the first call of `operation` whose params match raises."""
    from botocore.exceptions import ClientError

    fired: list = []

    def hook(params, **_kwargs):
        if not fired and matches(params):
            fired.append(params)
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, operation)
    client_.meta.events.register(f"before-parameter-build.dynamodb.{operation}", hook)
    return fired


def test_when_recording_fails_after_the_retry_was_queued_a_redelivery_starts_no_second_chain(client, env, aws):
    with Receiver() as inbox:
        inbox.script = [500, 500]
        hook = add_webhook(client, inbox.url)
        raw = hook_message("alice", hook["id"])
        ddb = dependencies.get_deps().dynamodb.client
        # GIVEN the last write of the attempt (the webhook's lastDelivery/failingSince) fails once
        fired = _fail_once(ddb, "UpdateItem", lambda p: p.get("Key", {}).get("SK", {}).get("S", "").startswith("WH#")
                           and "failingSince" in json.dumps(p.get("ExpressionAttributeNames", {})))
        with pytest.raises(Exception):
            run(raw)
        assert fired
        # WHEN SQS redelivers the message (after its visibility timeout: later than any lease)
        later = time.time() + 600
        outcome = run(raw, now=lambda: later)
    # THEN one next attempt is queued in all, and the endpoint was called once
    assert outcome == "duplicate"
    retries = [json.loads(m["Body"]) for m in queued(aws["WebhookQueueUrl"])]
    assert [m["attempt"] for m in retries] == [2]
    assert len(inbox.deliveries) == 1


def test_when_recording_the_attempt_fails_the_redelivery_retries_the_same_attempt(client, env, aws):
    with Receiver() as inbox:
        inbox.script = [500, 500]
        hook = add_webhook(client, inbox.url)
        raw = hook_message("alice", hook["id"])
        ddb = dependencies.get_deps().dynamodb.client
        fired = _fail_once(ddb, "BatchWriteItem", lambda p: True)
        with pytest.raises(Exception):
            run(raw)
        assert fired and queued(aws["WebhookQueueUrl"]) == []  # nothing queued before it is recorded
        later = time.time() + 600
        assert run(raw, now=lambda: later) == "retrying"
    retries = [json.loads(m["Body"]) for m in queued(aws["WebhookQueueUrl"])]
    assert [m["attempt"] for m in retries] == [2]
    assert [d["attempt"] for d in deliveries(client, hook["id"])] == [1]


def test_two_copies_of_one_message_in_flight_post_once(client, env):
    with Receiver(delay=0.5) as inbox:
        hook = add_webhook(client, inbox.url)
        raw = hook_message("alice", hook["id"])
        outcomes: list[str] = []
        threads = [threading.Thread(target=lambda: outcomes.append(run(raw))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(outcomes) == ["delivered", "duplicate"] and len(inbox.deliveries) == 1


# ---- secrets ----------------------------------------------------------------------------------------

def test_concurrent_rotations_only_return_secrets_that_sign(client, env, monkeypatch):
    from chalicelib.events import webhooks
    from tests.support.moto import atomic_dynamodb

    atomic_dynamodb(monkeypatch)
    from chalicelib.aws.models import WebhookModel, user_pk, webhook_sk
    from chalicelib.errors import ConflictError

    hook = add_webhook(client, "https://93.184.215.14/a")
    returned: list[str] = []
    conflicts: list[ConflictError] = []
    barrier = threading.Barrier(4)

    def rotate():
        # The domain call, not the HTTP route: chalice's test client swaps os.environ per request,
        # which is not safe from several threads at once.
        barrier.wait()
        try:
            returned.append(webhooks.rotate_secret("alice", hook["id"])[1])
        except ConflictError as exc:
            conflicts.append(exc)
    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = WebhookModel.get(user_pk("alice"), webhook_sk(hook["id"]), consistent_read=True)
    from chalicelib.events.delivery import _rotated_secrets

    now = int(time.time())
    signing = webhooks.signing_secrets(final, now) + _rotated_secrets(final, now)
    assert returned and len(returned) + len(conflicts) == 4
    assert all(s in signing for s in returned)
