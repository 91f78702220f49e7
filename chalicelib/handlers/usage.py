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


class _Record:
    """The two fields of an SQS record this handler reads (read-only over the raw dict)."""
    __slots__ = ("_raw",)

    def __init__(self, raw: dict) -> None:
        self._raw = raw

    @property
    def message_id(self) -> str:
        return self._raw.get("messageId") or ""

    @property
    def body(self) -> str:
        return self._raw.get("body") or ""


def _is_unstorable(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ValidationException"


def _record_one(record: _Record, event: Any) -> None:
    """One event alone: what a group falls back to when DynamoDB refuses one of its values."""
    from chalicelib.usage import service as usage

    deps = get_deps()
    try:
        usage.record_usage(deps.dynamodb, event, dedupe_days=deps.settings.usage_dedupe_days)
    except REJECTIONS as error:
        reject(record, error)
    except Exception as exc:
        if not _is_unstorable(exc):
            raise  # throttling, conflicts, an outage: SQS redelivers
        # DynamoDB refused a value of the event that validation let through: it would fail forever.
        reject(record, ValidationError("The event holds a value that cannot be stored", code="unstorable_event"))


def handle(event: Any) -> dict:
    """The batch's valid events are grouped per user and each group is recorded in one transaction
    (usage.record_group): its counters written once, each event's marker and history row with them.
    A group's failure fails only that group's records (partial batch response); a redelivered record
    finds its marker and changes nothing twice."""
    from chalicelib.usage import service as usage

    records = [_Record(raw) for raw in (event.to_dict().get("Records") or [])]
    failures: list[str] = []
    parsed: list[tuple[_Record, Any]] = []
    for record in records:
        try:
            parsed.append((record, usage.parse_event(record.body)))
        except REJECTIONS as error:
            try:
                reject(record, error)
            except DependencyError:
                failures.append(record.message_id)
    deps = get_deps() if parsed else None
    events = [e for _, e in parsed]
    for group in usage.group_by_user(events):
        members = [parsed[i] for i in group]
        try:
            try:
                results = usage.record_group(deps.dynamodb, [e for _, e in members],
                                             dedupe_days=deps.settings.usage_dedupe_days)
            except Exception as exc:
                if not _is_unstorable(exc) or len(members) == 1:
                    raise
                # One of them holds a value DynamoDB refuses: find it by recording them one by one.
                for record, one in members:
                    try:
                        _record_one(record, one)
                    except Exception:  # noqa: BLE001 — this record alone is redelivered
                        failures.append(record.message_id)
                continue
            for (record, event), result in zip(members, results):
                if isinstance(result, NotFoundError):
                    shared = usage.as_member(event)
                    if shared is not None:  # a member's use of a shared project's avatar: the home's
                        _record_one(record, shared)
                        continue
                if isinstance(result, REJECTIONS):
                    # Its avatar refused it (not the user's, gone, not ready): parked; one the DLQ did
                    # not take is left to SQS's retries alone.
                    try:
                        reject(record, result)
                    except DependencyError:
                        failures.append(record.message_id)
                else:
                    logger.debug("usage event handled", extra={"eventId": result.event.eventId,
                                                               "outcome": result.status})
        except Exception as exc:  # noqa: BLE001 — reported per record; SQS redelivers the group
            if _is_unstorable(exc) and len(members) == 1:
                try:
                    reject(members[0][0], ValidationError("The event holds a value that cannot be stored",
                                                          code="unstorable_event"))
                    continue
                except DependencyError:
                    pass
            logger.warning("usage events failed; SQS redelivers them",
                           extra={"messageIds": [r.message_id for r, _ in members], "error": type(exc).__name__})
            failures += [r.message_id for r, _ in members]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
