"""Usage-events queue: other apps report each use of an avatar (docs/usage-events.md).

A message that can never succeed — not JSON, not a usage-event.v1, or naming an avatar that is not
the user's (or not ready) — is moved to the usage DLQ by this handler with `rejectCode` and
`rejectReason` attributes and counts as handled: retrying it would only loop. Anything else that
fails (DynamoDB throttling, a transaction conflict, the DLQ itself unreachable) raises, so SQS
redelivers that record alone (partial batch response) and, after maxReceiveCount, dead-letters it.
"""
from __future__ import annotations

from typing import Any

from chalicelib.dependencies import get_deps
from chalicelib.errors import ConflictError, DependencyError, NotFoundError, ValidationError
from chalicelib.handlers import process_batch
from chalicelib.observability import logger

# Permanent failures: the same body would fail the same way on every delivery.
REJECTIONS = (ValidationError, NotFoundError, ConflictError)
REASON_MAX = 256
DLQ_SUFFIX = "-dlq"


def dlq_url(settings: Any) -> str:
    if settings.usage_events_dlq_url:
        return settings.usage_events_dlq_url
    if settings.usage_events_queue_url:
        # infra/resources.json names every DLQ after its queue; an unset variable must not turn
        # a rejection into a retry loop.
        return settings.usage_events_queue_url + DLQ_SUFFIX
    raise DependencyError("USAGE_EVENTS_DLQ_URL is not configured")


def _reason(error: Any) -> str:
    details = error.details if isinstance(error.details, list) else []
    fields = ", ".join(f"{d.get('field')}: {d.get('message')}" for d in details[:5] if isinstance(d, dict))
    text = f"{error.message} ({fields})" if fields else error.message
    return text[:REASON_MAX]


def reject(record: Any, error: Any) -> None:
    """Park the original body in the DLQ, saying why; raising here leaves the record to SQS's retries."""
    from botocore.exceptions import BotoCoreError, ClientError

    deps = get_deps()
    reason = _reason(error)
    logger.warning("usage event rejected", extra={"messageId": record.message_id, "rejectCode": error.code,
                                                  "rejectReason": reason})
    try:
        deps.sqs.send_message(
            QueueUrl=dlq_url(deps.settings), MessageBody=record.body,
            MessageAttributes={
                "rejectCode": {"DataType": "String", "StringValue": error.code},
                "rejectReason": {"DataType": "String", "StringValue": reason},
                "sourceMessageId": {"DataType": "String", "StringValue": record.message_id or "-"},
            })
    except (BotoCoreError, ClientError) as exc:
        raise DependencyError("Could not move the rejected usage event to the DLQ") from exc


def _process(record: Any) -> None:
    from chalicelib import usage

    try:
        event = usage.parse_event(record.body)
        deps = get_deps()
        outcome = usage.record_usage(deps.dynamodb, event, dedupe_days=deps.settings.usage_dedupe_days)
    except REJECTIONS as error:
        reject(record, error)
        return
    except Exception as exc:
        if getattr(exc, "cause_response_code", None) != "ValidationException":
            raise  # throttling, conflicts, an outage: SQS redelivers
        # DynamoDB refused a value of the event that validation let through: it would fail forever.
        reject(record, ValidationError("The event holds a value that cannot be stored", code="unstorable_event"))
        return
    logger.debug("usage event handled", extra={"eventId": event.eventId, "outcome": outcome.status})


def handle(event: Any) -> dict:
    return process_batch(event, _process)
