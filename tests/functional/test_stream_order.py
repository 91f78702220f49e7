"""Issue 26: the stream handler keeps each item's order on partial failure, and a record that always
fails is parked (with its reason, for an operator to redrive) after its last attempt instead of
blocking its shard — the records after it are still delivered, in order (moto)."""
from __future__ import annotations

import json

import boto3

from chalicelib import dependencies
from chalicelib.errors import DependencyError
from tests.functional.conftest import PREFIX, auth, body
from tests.functional.test_events import add_webhook, bus, env, moto_streams, stream  # noqa: F401 - fixtures
from tests.support.generation import deliver
from tests.support.webhooks import Receiver, stream_records


class FailingBus:
    """The event bus with the real interface; refuses (as EventBridge would) events of the given resources."""

    def __init__(self, real, refused: set[str]) -> None:
        self.real, self.refused, self.calls = real, refused, 0

    def put(self, events: list[dict]) -> None:
        self.calls += 1
        if any(e["data"].get("id") in self.refused for e in events):
            raise DependencyError("Could not put events on the event bus")
        self.real.put(events)


def refuse(*resource_ids: str) -> FailingBus:
    deps = dependencies.get_deps()
    failing = FailingBus(deps.event_bus, set(resource_ids))
    deps.event_bus = failing  # the one place the real adapters are built: tests swap in fakes there
    return failing


def deleted_projects(client, names: list[str]) -> list[str]:
    ids = []
    for name in names:
        pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": name})).json_body["id"]
        assert client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
        ids.append(pid)
    return ids


def seq(record: dict) -> str:
    return record["dynamodb"]["SequenceNumber"]


def test_the_handler_stops_at_the_first_failed_record_and_reports_it_and_every_later_one(client, env, bus):
    # GIVEN three deleted projects in one batch, the second one's event refused by the bus
    first, second, third = deleted_projects(client, ["A", "B", "C"])
    records = stream_records(dependencies.get_deps().settings.table_name, streams=moto_streams())
    refuse(second)
    # WHEN the stream handler runs on the batch
    result = client.lambda_.invoke("stream_worker", {"Records": records}).payload
    # THEN the failed record and everything after it are reported; nothing after it was published
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    by_project = {json.dumps(r["dynamodb"].get("OldImage", {}).get("id")): r for r in records}
    failing_at = seq(by_project[json.dumps({"S": second})])
    assert failed == [seq(r) for r in records][[seq(r) for r in records].index(failing_at):]
    published = [e["detail"]["data"]["id"] for e in bus()]
    assert published == [first] and third not in published


def test_a_record_that_keeps_failing_is_parked_with_its_reason_and_later_records_still_arrive_in_order(
        client, env, bus, stream, aws):
    env(STREAM_MAX_ATTEMPTS="3")
    with Receiver() as receiver:
        hook = add_webhook(client, receiver.url, events=["project.deleted"])
        receiver.secrets = [hook["secret"]]
        ids = deleted_projects(client, ["A", "B", "C", "D"])
        failing = refuse(ids[1])
        # WHEN the feeder (Lambda's event source mapping) retries the failing record
        for _ in range(3):
            stream.drain()
        # THEN after its last attempt it is parked, and the shard moves on
        sqs = boto3.client("sqs", region_name="us-east-1")
        parked = sqs.receive_message(QueueUrl=aws["StreamRecordsDlqUrl"], MaxNumberOfMessages=10, VisibilityTimeout=0,
                                     WaitTimeSeconds=0).get("Messages", [])
        assert len(parked) == 1
        body_ = json.loads(parked[0]["Body"])
        assert body_["record"]["dynamodb"]["OldImage"]["id"] == {"S": ids[1]}
        assert body_["attempts"] == 3 and "event bus" in body_["reason"]
        deliver("webhook_worker")
        got = receiver.wait_for(3)
        assert [d["event"]["data"]["id"] for d in got] == [ids[0], ids[2], ids[3]]  # in order
        assert [e["detail"]["data"]["id"] for e in bus()] == [ids[0], ids[2], ids[3]]
        assert failing.calls >= 3

        # AND an operator redrives it once the cause is fixed
        from chalicelib.handlers.stream import redrive_parked

        failing.refused.clear()
        assert redrive_parked(max_messages=10) == 1
        deliver("webhook_worker")
        assert [d["event"]["data"]["id"] for d in receiver.wait_for(4)][-1] == ids[1]
    assert sqs.receive_message(QueueUrl=aws["StreamRecordsDlqUrl"], WaitTimeSeconds=0).get("Messages", []) == []


def test_a_failure_below_the_limit_is_retried_not_parked(client, env, bus, stream, aws):
    env(STREAM_MAX_ATTEMPTS="3")
    ids = deleted_projects(client, ["A", "B"])
    failing = refuse(ids[0])
    stream.drain()
    stream.drain()
    assert bus() == []  # the first record blocks its item's successors (and, on one shard, all)
    failing.refused.clear()
    stream.drain()
    assert [e["detail"]["data"]["id"] for e in bus()] == ids
    sqs = boto3.client("sqs", region_name="us-east-1")
    assert sqs.receive_message(QueueUrl=aws["StreamRecordsDlqUrl"], WaitTimeSeconds=0).get("Messages", []) == []


def test_the_local_mapping_takes_its_limits_from_infra_and_gives_up_like_lambda(client, env, bus, stream, aws):
    # GIVEN the local mapping configured from infra/resources.json, a bus that refuses everything and a
    # handler that never parks (its own limit out of reach)
    stream.sources = stream.discover()
    [source] = stream.sources
    assert (source.max_retry_attempts, source.max_record_age_seconds, source.bisect) == (10, 21600, True)
    sqs = boto3.client("sqs", region_name="us-east-1")
    stream.on_failure_queue_url, stream._sqs = aws["StreamDlqUrl"], sqs
    source.max_retry_attempts = 2
    env(STREAM_MAX_ATTEMPTS="100", EVENT_BUS_NAME="no-such-bus")
    deleted_projects(client, ["Lost"])
    # WHEN it fails the first invocation and both retries
    for _ in range(3):
        stream.drain()
    # THEN the batch is skipped and only where it was goes to the on-failure destination
    [info] = sqs.receive_message(QueueUrl=aws["StreamDlqUrl"], WaitTimeSeconds=0).get("Messages", [])
    batch = json.loads(info["Body"])["DDBStreamBatchInfo"]
    assert batch["startSequenceNumber"] and batch["endSequenceNumber"] and "Records" not in info["Body"]
    assert json.loads(info["Body"])["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # AND the shard goes on with what comes next
    env(EVENT_BUS_NAME=aws["EventBusName"])
    dependencies.get_deps()
    [after] = deleted_projects(client, ["Next"])
    stream.drain()
    assert [e["detail"]["data"]["id"] for e in bus()] == [after]
