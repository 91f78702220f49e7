"""Generation queue and its DLQ: each message is `{"userId", "generationId"}`."""
from __future__ import annotations

from typing import Any

from chalicelib.dependencies import get_deps
from chalicelib.handlers import process_batch
from chalicelib.observability import logger

def _job(record: Any) -> tuple[str, str] | None:
    from chalicelib.generation import parse_job

    try:
        return parse_job(record.body)
    except (ValueError, TypeError):
        # Can never succeed: logged and dropped rather than looped into the DLQ.
        logger.error("malformed generation message dropped", extra={"messageId": record.message_id})
        return None


def _run(record: Any) -> None:
    from chalicelib import generation

    job = _job(record)
    if job is None:
        return
    deps = get_deps()
    try:
        generation.run_job(deps.dynamodb, deps.storage, deps.settings, deps.provider, *job)
    except generation.RetryLater as later:
        # Back to the queue after the backoff; the partial batch response keeps it there, and after
        # maxReceiveCount SQS moves it to the DLQ.
        deps.sqs.change_message_visibility(QueueUrl=deps.settings.generation_queue_url,
                                           ReceiptHandle=record.receipt_handle, VisibilityTimeout=later.delay)
        raise


def handle(event: Any) -> dict:
    return process_batch(event, _run)


def _dead_letter(record: Any) -> None:
    from chalicelib import generation

    job = _job(record)
    if job is None:
        return
    outcome = generation.dead_letter(get_deps().dynamodb, *job)
    logger.warning("generation job dead-lettered", extra={"userId": job[0], "generationId": job[1],
                                                          "outcome": outcome, "messageId": record.message_id})


def handle_dead_letters(event: Any) -> dict:
    return process_batch(event, _dead_letter)
