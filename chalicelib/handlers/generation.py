"""Generation queue and its DLQ: each message is `{"userId", "generationId"}`.

The worker's lease (GENERATION_LEASE_SECONDS) outlasts the function's timeout and the queue's
visibility timeout is at least six times that timeout, so nothing here extends either: a run that
is killed leaves its message invisible until well after its lease has ended.
"""
from __future__ import annotations

import functools
import math
from typing import Any

from chalicelib.dependencies import get_deps
from chalicelib.handlers import process_batch
from chalicelib.observability import dead_letter_metric, logger

HAND_ON_DELAY_SECONDS = 5


def _job(record: Any) -> tuple[str, str] | None:
    from chalicelib.generation.spec import parse_job

    try:
        return parse_job(record.body)
    except (ValueError, TypeError):
        # Can never succeed: logged and dropped rather than looped into the DLQ.
        logger.error("malformed generation message dropped", extra={"messageId": record.message_id})
        return None


def _remaining(context: Any) -> float:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return math.inf
    return context.get_remaining_time_in_millis() / 1000


def _run(record: Any, context: Any = None) -> None:
    from chalicelib.generation import worker

    job = _job(record)
    if job is None:
        return
    deps = get_deps()
    settings = deps.settings

    def hand_on() -> None:
        # A new message: the current one's receives count attempts, not time slices. Delayed a few
        # seconds so it finds the job handed back, not the lease this run is about to give up.
        deps.sqs.send_message(QueueUrl=settings.generation_queue_url, MessageBody=record.body,
                              DelaySeconds=HAND_ON_DELAY_SECONDS)

    try:
        worker.run_job(deps.dynamodb, deps.storage, settings, deps.provider, *job,
                       remaining=lambda: _remaining(context), hand_on=hand_on)
    except worker.RetryLater as later:
        # Back to the queue after the delay; the partial batch response keeps it there, and after
        # maxReceiveCount SQS moves it to the DLQ.
        from botocore.exceptions import ClientError

        try:
            deps.sqs.change_message_visibility(QueueUrl=settings.generation_queue_url,
                                               ReceiptHandle=record.receipt_handle, VisibilityTimeout=later.delay)
        except ClientError:
            # This delivery's receipt is no longer valid (the message was received again meanwhile):
            # the job needs a message of its own.
            deps.sqs.send_message(QueueUrl=settings.generation_queue_url, MessageBody=record.body,
                                  DelaySeconds=min(later.delay, 900))
            return
        raise


def handle(event: Any) -> dict:
    return process_batch(event, functools.partial(_run, context=getattr(event, "context", None)))


def _dead_letter(record: Any) -> None:
    from chalicelib.generation import jobs

    dead_letter_metric("generations")
    job = _job(record)
    if job is None:
        return
    outcome = jobs.dead_letter(get_deps().dynamodb, *job)
    logger.warning("generation job dead-lettered", extra={"userId": job[0], "generationId": job[1],
                                                          "outcome": outcome, "messageId": record.message_id})


def handle_dead_letters(event: Any) -> dict:
    return process_batch(event, _dead_letter)
