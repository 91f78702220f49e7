"""The table's stream → events on the EventBridge bus and in the webhook queue.

Committed changes are the only source of events (a crash after a write cannot skip one: the record
is in the stream until this handler has published it).

Order per item: records are handled in the batch's (the shard's) order and the handler stops at the
first record that fails, reporting it and every record after it as failed; Lambda retries from it,
so nothing after a failed change is published before it. The records already published before it
are not reported and are not sent again.

Bounded: each failure of a record is counted (an item per sequence number, with a TTL). After
STREAM_MAX_ATTEMPTS failures the handler parks the record — the whole record and the reason — in
its own queue (STREAM_RECORDS_DLQ_URL) and goes on with the next, so one poisoned record cannot block
its shard until the stream drops it. Lambda's own on-failure destination (the event source's
MaximumRetryAttempts / MaximumRecordAgeInSeconds, a backstop set above this limit) only receives
shard and sequence numbers; the parked message is what an operator reads and redrives
(`redrive_parked`, docs/events.md).
"""
from __future__ import annotations

import json
from typing import Any, Callable

from chalicelib.dependencies import get_deps
from chalicelib.observability import logger


def publish_record(raw: dict, webhooks_of: Callable[[str], list] | None = None,
                   members_of: Callable[[str], list[str]] | None = None) -> int:
    """Publish the events of one stream record (Lambda's shape); returns how many.

    Webhooks: the item's owner's, and — for a project shared with members (issue 30) — every member's:
    one Query of the project's members (<= 50), then each member's webhooks (one Query each)."""
    from chalicelib.events import mapping as events
    from chalicelib.events import delivery as webhook_delivery

    found = events.from_stream_record(raw)
    if not found:
        return 0
    deps = get_deps()
    deps.event_bus.put(found)
    user_id = events.user_of(raw)
    project_id, concerned = events.audience_of(raw)
    recipients = [user_id] if user_id else []
    if project_id:
        members = members_of(project_id) if members_of else _members(project_id)
        recipients += [m for m in [*members, concerned] if m and m not in recipients]
    for recipient in recipients:
        webhook_delivery.fan_out(deps.sqs, deps.settings.webhook_queue_url, recipient, found,
                                 webhooks_of(recipient) if webhooks_of else None)
    return len(found)


def _members(project_id: str) -> list[str]:
    from chalicelib.teams import store as team_store

    return [m.user_id for m in team_store.members(project_id)]


def _sequence(raw: dict) -> str:
    return str((raw.get("dynamodb") or {}).get("SequenceNumber") or raw.get("eventID") or "")


def _count_failure(raw: dict) -> int:
    """How many times this record has failed now (a counter item per sequence number, kept 2 days:
    longer than a record stays in the stream)."""
    from chalicelib import clock
    from chalicelib.aws.models import RateWindowModel

    counter = RateWindowModel(f"STREAMFAIL#{_sequence(raw)}", "ATTEMPTS")
    counter.update(actions=[RateWindowModel.count.add(1), RateWindowModel.ttl.set(clock.epoch(clock.now()) + 2 * 86400)])
    return int(counter.count or 0)


def _park(raw: dict, reason: str, attempts: int) -> None:
    """The record and why it failed, in the handler's own DLQ, for an operator to read and redrive."""
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.errors import DependencyError

    deps = get_deps()
    url = deps.settings.stream_records_dlq_url
    if not url:
        raise DependencyError("STREAM_RECORDS_DLQ_URL is not configured")
    body = {"v": 1, "record": raw, "reason": reason[:1000], "attempts": attempts,
            "sequenceNumber": _sequence(raw), "eventSourceARN": raw.get("eventSourceARN")}
    try:
        deps.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body, separators=(",", ":"), default=str))
    except (BotoCoreError, ClientError) as exc:
        raise DependencyError("Could not park the failed stream record") from exc


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def handle(event: Any) -> dict:
    from chalicelib.events.webhooks import user_webhooks

    records = list((event.to_dict() if hasattr(event, "to_dict") else event).get("Records") or [])
    # A burst of one user's changes reads their webhooks once per batch, not once per record (a
    # webhook added meanwhile gets events from the next batch on, a few seconds later at most).
    known: dict[str, list] = {}
    teams: dict[str, list[str]] = {}

    def webhooks_of(user_id: str) -> list:
        if user_id not in known:
            known[user_id] = user_webhooks(user_id)
        return known[user_id]

    def members_of(project_id: str) -> list[str]:
        # Once per project per batch, like the webhooks: a member added meanwhile hears from the next one.
        if project_id not in teams:
            teams[project_id] = _members(project_id)
        return teams[project_id]

    limit = max(1, get_deps().settings.stream_max_attempts)
    for index, raw in enumerate(records):
        try:
            publish_record(raw, webhooks_of, members_of)
            continue
        except Exception as exc:  # noqa: BLE001 - any failure of a record stops the batch there (order)
            reason = _reason(exc)
            failure = exc
        try:
            attempts = _count_failure(raw)
            if attempts >= limit:
                _park(raw, reason, attempts)
                logger.error("stream record parked after its last attempt",
                             extra={"sequenceNumber": _sequence(raw), "attempts": attempts, "reason": reason})
                continue
        except Exception as exc:  # noqa: BLE001 - counting/parking failed: retry the record as it is
            logger.warning("could not count or park a failed stream record", extra={"error": _reason(exc)})
            attempts = 0
        logger.warning("stream record failed; it and the rest of the batch will be retried",
                       extra={"sequenceNumber": _sequence(raw), "attempts": attempts, "reason": _reason(failure),
                              "reported": len(records) - index})
        return {"batchItemFailures": [{"itemIdentifier": _sequence(r)} for r in records[index:]]}
    return {"batchItemFailures": []}


def redrive_parked(*, max_messages: int = 100, queue_url: str | None = None) -> int:
    """Operator tool: publish the parked records again, oldest first, deleting each one that went
    through; stops at the first that fails again (it stays parked). Returns how many were published.
    `python -m scripts.redrive_stream_records`."""
    deps = get_deps()
    url = queue_url or deps.settings.stream_records_dlq_url
    done = 0
    while done < max_messages:
        messages = deps.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0,
                                            VisibilityTimeout=60).get("Messages", [])
        if not messages:
            break
        message = messages[0]
        parked = json.loads(message["Body"])
        publish_record(parked["record"])
        deps.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        done += 1
    return done
