"""Upload queue: each SQS message is an S3 event notification for objects created under uploads/."""
from __future__ import annotations

import json
import urllib.parse
from typing import Any, Iterator

from chalicelib.dependencies import get_deps
from chalicelib.handlers import process_batch
from chalicelib.observability import logger


def s3_objects(body: str) -> Iterator[tuple[str, str, int | None]]:
    """(bucket, key, size) of every ObjectCreated record in one S3 notification.

    AWS sends keys URL-encoded in form style (a space as '+'), as Chalice's S3Event decodes them.
    S3's `s3:TestEvent` (sent when the notification is configured) carries no records.
    """
    message = json.loads(body)
    if not isinstance(message, dict) or message.get("Event") == "s3:TestEvent":
        return
    for record in message.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        size = s3["object"].get("size")
        yield s3["bucket"]["name"], urllib.parse.unquote_plus(s3["object"]["key"]), \
            int(size) if size is not None else None


def _process(record: Any, context: Any = None) -> None:
    from chalicelib.handlers.crops import handle_thumbnail_request
    from chalicelib.handlers.suggestions import handle_suggestion_request
    from chalicelib.avatars.uploads import process_uploaded_object

    if handle_thumbnail_request(record):  # a crop changed (chalicelib.avatars.crops): same worker, same Pillow
        return
    if handle_suggestion_request(record, context):  # attribute suggestions after ready (chalicelib.avatars.suggestions)
        return

    try:
        objects = list(s3_objects(record.body))
    except (ValueError, KeyError, TypeError, AttributeError):
        # Not an S3 notification: it can never succeed, so log it rather than loop it to the DLQ.
        logger.error("malformed upload message dropped", extra={"messageId": record.message_id})
        return
    deps = get_deps()
    for bucket, key, size in objects:
        outcome = process_uploaded_object(deps.dynamodb, deps.storage, deps.settings, bucket=bucket, key=key,
                                          size=size)
        logger.debug("upload event handled", extra={"key": key, "outcome": outcome})
        if outcome in ("ready", "skipped: avatar is ready"):  # a duplicate event repairs a lost request
            from chalicelib.handlers.suggestions import request_suggestions

            request_suggestions(key)


def handle(event: Any) -> dict:
    context = getattr(event, "context", None)
    return process_batch(event, lambda record: _process(record, context))


def _dead_letter(record: Any) -> None:
    from chalicelib.observability import dead_letter_metric
    from chalicelib.avatars.uploads import dead_letter

    dead_letter_metric("uploads")
    from chalicelib.handlers.suggestions import handle_suggestion_dead_letter

    if handle_suggestion_dead_letter(record):
        return
    try:
        objects = list(s3_objects(record.body))
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.error("malformed upload dead letter dropped", extra={"messageId": record.message_id})
        return
    storage = get_deps().storage
    for bucket, key, _ in objects:
        outcome = dead_letter(storage, bucket=bucket, key=key)
        logger.warning("upload dead-lettered", extra={"key": key, "outcome": outcome})
        if outcome == "skipped: avatar is ready":  # ready, but its suggestion request may never have been sent
            from chalicelib.handlers.suggestions import end_pending_suggestions

            end_pending_suggestions(key)


def handle_dead_letters(event: Any) -> dict:
    return process_batch(event, _dead_letter)
