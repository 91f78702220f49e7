"""The table's stream → events on the EventBridge bus and in the webhook queue.

Committed changes are the only source of events (a crash after a write cannot skip one: the record
is in the stream until this handler has published it). A record that fails is reported in the
partial batch response; Lambda retries from it, so records after it may be published again — with
the same event ids (chalicelib/events.py), which consumers dedupe on.
"""
from __future__ import annotations

from typing import Any, Callable

from chalicelib.dependencies import get_deps


def publish_record(raw: dict, webhooks_of: Callable[[str], list] | None = None) -> int:
    """Publish the events of one stream record (Lambda's shape); returns how many."""
    from chalicelib import events, webhook_delivery

    found = events.from_stream_record(raw)
    if not found:
        return 0
    deps = get_deps()
    deps.event_bus.put(found)
    user_id = events.user_of(raw)
    webhook_delivery.fan_out(deps.sqs, deps.settings.webhook_queue_url, user_id, found,
                             webhooks_of(user_id) if webhooks_of else None)
    return len(found)


def handle(event: Any) -> dict:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from chalicelib.webhooks import user_webhooks

    # A burst of one user's changes reads their webhooks once per batch, not once per record (a
    # webhook added meanwhile gets events from the next batch on, a few seconds later at most).
    known: dict[str, list] = {}

    def webhooks_of(user_id: str) -> list:
        if user_id not in known:
            known[user_id] = user_webhooks(user_id)
        return known[user_id]

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event.to_dict(),
                                    record_handler=lambda record: publish_record(record.raw_event, webhooks_of),
                                    processor=processor, context=getattr(event, "context", None))
