"""local.feeder against a real ministack: Lambda's SQS event source mapping semantics (batching,
partial batch responses, redelivery after the visibility timeout, DLQ after maxReceiveCount) and the
exact Lambda event/context shapes, with a fake Chalice app."""
from __future__ import annotations

import base64
import collections
import threading
import time

import pytest
from chalice import Chalice

from local.feeder import Feeder, failed_ids
from local.provision import provision
from tests.support.local_stack import start_ministack

VISIBILITY = 1


def _queue(name: str, max_receive: int) -> dict:
    return {
        f"{name}Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"feeder-{name.lower()}-dlq"}},
        name: {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": f"feeder-{name.lower()}", "VisibilityTimeout": VISIBILITY,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [f"{name}Dlq", "Arn"]},
                              "maxReceiveCount": max_receive}}},
    }


TEMPLATE = {"Resources": {**_queue("Partial", 3), **_queue("Poison", 2), **_queue("Shape", 3)},
            "Outputs": {k: {"Value": {"Ref": k}} for k in ("Partial", "PartialDlq", "Poison", "PoisonDlq", "Shape")}}


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, list[int]] = collections.defaultdict(list)  # body -> receive counts
        self.events: list[tuple[dict, object]] = []
        self.logger_keys: dict = {}

    def saw(self, body: str, count: int) -> None:
        with self.lock:
            self.seen[body].append(count)


def make_app(rec: Recorder) -> Chalice:
    app = Chalice(app_name="feeder-test")

    @app.on_sqs_message(queue="feeder-partial", batch_size=10)
    def partial(event):
        failures = []
        for record in event:
            raw = record.to_dict()
            count = int(raw["attributes"]["ApproximateReceiveCount"])
            rec.saw(record.body, count)
            if record.body.startswith("fail-once") and count == 1:
                failures.append({"itemIdentifier": raw["messageId"]})
        return {"batchItemFailures": failures}

    @app.on_sqs_message(queue="feeder-poison", batch_size=1)
    def poison(event):
        for record in event:
            rec.saw(record.body, int(record.to_dict()["attributes"]["ApproximateReceiveCount"]))
            if record.body == "poison":
                raise ValueError("cannot process this one")

    @app.on_sqs_message(queue="feeder-shape", batch_size=5, maximum_concurrency=2)
    def shape(event):
        from aws_lambda_powertools import Logger

        logger = Logger(service="feeder-test")

        @logger.inject_lambda_context
        def inner(ev, ctx):
            rec.logger_keys = dict(logger.get_current_keys())

        inner(event.to_dict(), event.context)
        with rec.lock:
            rec.events.append((event.to_dict(), event.context))
            for record in event:
                rec.seen[record.body].append(0)

    return app


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    ms = start_ministack(tmp_path_factory.mktemp("feeder-ministack"))
    try:
        outputs = provision(ms.endpoint_url, template=TEMPLATE)
        yield ms, outputs
    finally:
        ms.stop()


@pytest.fixture
def feeder(env):
    ms, outputs = env
    rec = Recorder()
    feeder = Feeder(make_app(rec), ms.endpoint_url).start()
    feeder.rec = rec
    yield feeder
    feeder.stop()


def sqs_client(env):
    from local import aws as local_aws

    return local_aws.client("sqs", env[0].endpoint_url)


def depth(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_discovers_handlers_with_batch_size_and_concurrency(feeder):
    by_name = {s.name: s for s in feeder.sources}
    assert set(by_name) == {"partial", "poison", "shape"}
    assert (by_name["partial"].batch_size, by_name["partial"].concurrency) == (10, 1)
    assert (by_name["shape"].batch_size, by_name["shape"].concurrency) == (5, 2)
    assert by_name["poison"].queue_arn.endswith(":feeder-poison")
    assert len(feeder._threads) == 4


def test_concurrency_override(env):
    ms, _ = env
    f = Feeder(make_app(Recorder()), ms.endpoint_url, concurrency={"partial": 3, "feeder-poison": 2}).start()
    try:
        assert {s.name: s.concurrency for s in f.sources} == {"partial": 3, "poison": 2, "shape": 2}
        assert len(f._threads) == 7
    finally:
        f.stop()


def test_partial_batch_failure_deletes_the_rest_and_redelivers_the_failed(env, feeder):
    ms, outputs = env
    sqs = sqs_client(env)
    bodies = [f"ok-{i}" for i in range(6)] + ["fail-once-a", "fail-once-b"]
    sqs.send_message_batch(QueueUrl=outputs["Partial"],
                           Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])
    rec = feeder.rec
    wait_until(lambda: all(len(rec.seen[b]) >= (2 if b.startswith("fail") else 1) for b in bodies))
    wait_until(lambda: depth(sqs, outputs["Partial"]) == 0)
    time.sleep(VISIBILITY + 1.5)  # nothing else comes back after another visibility timeout
    for body in bodies:
        assert rec.seen[body] == ([1, 2] if body.startswith("fail") else [1]), (body, rec.seen[body])
    assert depth(sqs, outputs["PartialDlq"]) == 0


def test_poison_message_lands_in_the_dlq_and_the_poller_survives(env, feeder):
    ms, outputs = env
    sqs = sqs_client(env)
    sqs.send_message(QueueUrl=outputs["Poison"], MessageBody="poison")
    wait_until(lambda: len(feeder.rec.seen["poison"]) >= 2)
    dead = wait_until(lambda: sqs.receive_message(QueueUrl=outputs["PoisonDlq"], WaitTimeSeconds=1,
                                                  AttributeNames=["All"]).get("Messages"), timeout=20)
    assert dead[0]["Body"] == "poison"
    assert feeder.rec.seen["poison"] == [1, 2]  # maxReceiveCount 2
    assert feeder.errors == 2
    # the poller thread survived the handler's exceptions
    sqs.send_message(QueueUrl=outputs["Poison"], MessageBody="after-poison")
    wait_until(lambda: feeder.rec.seen["after-poison"] == [1])
    assert all(t.is_alive() for t in feeder._threads)


def test_lambda_event_and_context_shapes(env, feeder):
    from aws_lambda_powertools.utilities.data_classes import SQSEvent as PowertoolsSQSEvent
    from chalice.app import SQSEvent

    ms, outputs = env
    sqs = sqs_client(env)
    sqs.send_message(QueueUrl=outputs["Shape"], MessageBody='{"hello": "world"}', MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "greeting"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        "n": {"DataType": "Number", "StringValue": "42"},
    })
    rec = feeder.rec
    wait_until(lambda: rec.events)
    event, context = rec.events[0]
    record, = event["Records"]
    assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "eventSource", "eventSourceARN", "awsRegion"}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:000000000000:feeder-shape"
    assert record["awsRegion"] == "us-east-1"
    assert record["body"] == '{"hello": "world"}'
    assert set(record["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                         "ApproximateFirstReceiveTimestamp"}
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"] == {"stringValue": "greeting", "stringListValues": [],
                                                   "binaryListValues": [], "dataType": "String"}
    assert base64.b64decode(record["messageAttributes"]["blob"]["binaryValue"]) == b"\x00\x01"
    assert record["messageAttributes"]["n"]["dataType"] == "Number"

    # Chalice's own event classes parse it
    parsed, = list(SQSEvent(event, context))
    assert parsed.body == record["body"] and parsed.receipt_handle == record["receiptHandle"]
    # and Powertools' data class (what process_partial_response reads)
    pt = next(iter(PowertoolsSQSEvent(event).records))
    assert pt.message_id == record["messageId"]
    assert pt.attributes.approximate_receive_count == "1"
    assert pt.message_attributes["kind"].string_value == "greeting"
    assert pt.json_body == {"hello": "world"}

    # the context is what Lambda passes; Powertools' inject_lambda_context accepted it
    assert context.function_name == "feeder-test-local-shape"
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:000000000000:function:feeder-test-local-shape"
    assert context.function_version == "$LATEST"
    assert context.memory_limit_in_mb > 0 and context.aws_request_id and context.log_group_name
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    assert rec.logger_keys["function_name"] == "feeder-test-local-shape"
    assert rec.logger_keys["function_request_id"] == context.aws_request_id
    wait_until(lambda: depth(sqs, outputs["Shape"]) == 0)


def test_stop_is_prompt_and_finishes_in_flight_batches(env):
    ms, outputs = env
    sqs = sqs_client(env)
    release, blocked = threading.Event(), threading.Event()
    done: list[str] = []
    app = Chalice(app_name="slow")

    @app.on_sqs_message(queue="feeder-shape", batch_size=1)
    def slow(event):
        for record in event:
            blocked.set()
            release.wait(5)
            done.append(record.body)

    f = Feeder(app, ms.endpoint_url).start()
    sqs.send_message(QueueUrl=outputs["Shape"], MessageBody="in-flight")
    assert blocked.wait(15), "the message never reached the handler"  # received and blocked in the handler
    stopper = threading.Thread(target=f.stop)
    started = time.monotonic()
    stopper.start()
    time.sleep(0.3)
    assert stopper.is_alive()  # waits for the batch in flight
    release.set()
    stopper.join(5)
    assert not stopper.is_alive() and time.monotonic() - started < 3
    assert done == ["in-flight"]
    assert depth(sqs, outputs["Shape"]) == 0  # finished batch was deleted


@pytest.mark.parametrize("result, expected", [
    (None, set()), ({"statusCode": 200}, set()), ({"batchItemFailures": []}, set()),
    ({"batchItemFailures": [{"itemIdentifier": "a"}]}, {"a"}),
    ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),        # Lambda: whole batch failed
    ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),
    ({"batchItemFailures": [{"nope": "a"}]}, None),
    ({"batchItemFailures": "a"}, None),
])
def test_batch_item_failures_semantics(result, expected):
    assert failed_ids(result, {"a", "b"}) == expected
