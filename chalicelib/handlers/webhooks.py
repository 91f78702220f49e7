"""Webhook queue: one message = one (webhook, event) delivery attempt (chalicelib/events/delivery.py).

Failed POSTs are not failures of this handler: the next attempt is queued as a new delayed message.
Only our own dependencies failing (DynamoDB, SQS) raise, so SQS redelivers that record and, after
maxReceiveCount, dead-letters it.
"""
from __future__ import annotations

from typing import Any

from chalicelib.dependencies import get_deps
from chalicelib.handlers import process_batch
from chalicelib.observability import logger


def _process(record: Any) -> None:
    from chalicelib.events import delivery as webhook_delivery

    deps = get_deps()
    outcome = webhook_delivery.deliver(deps.sqs, deps.dynamodb.client, deps.settings, record.body)
    logger.debug("webhook message handled", extra={"messageId": record.message_id, "outcome": outcome})


def handle(event: Any) -> dict:
    return process_batch(event, _process)
