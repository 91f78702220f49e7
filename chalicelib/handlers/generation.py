"""Generation queue and its DLQ: each message is `{"userId", "generationId"}`."""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

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


@contextlib.contextmanager
def heartbeat(sqs: Any, queue_url: str | None, receipt_handle: str | None, claim: Any, every: float,
              extend_to: int) -> Iterator[None]:
    """While the provider works: renew the run's lease and keep its message invisible, every `every`
    seconds, so neither a sweep nor SQS hands the job to anyone else. Stops when the block ends."""
    from botocore.exceptions import BotoCoreError, ClientError

    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                if not claim.renew():
                    return  # the job was taken (cancelled, expired, purged): nothing to keep alive
                if queue_url and receipt_handle:
                    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle,
                                                  VisibilityTimeout=extend_to)
            except (BotoCoreError, ClientError) as exc:  # the next beat tries again
                logger.warning("heartbeat failed", extra={"error": str(exc)[:200]})

    thread = threading.Thread(target=beat, name="generation-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def _run(record: Any) -> None:
    from chalicelib import generation

    job = _job(record)
    if job is None:
        return
    deps = get_deps()
    settings = deps.settings

    def beat(claim: Any) -> Any:
        return heartbeat(deps.sqs, settings.generation_queue_url, record.receipt_handle, claim,
                         settings.generation_heartbeat_seconds, settings.generation_lease_seconds)

    try:
        generation.run_job(deps.dynamodb, deps.storage, settings, deps.provider, *job, heartbeat=beat)
    except generation.RetryLater as later:
        # Back to the queue after the backoff; the partial batch response keeps it there, and after
        # maxReceiveCount SQS moves it to the DLQ.
        from botocore.exceptions import ClientError

        try:
            deps.sqs.change_message_visibility(QueueUrl=settings.generation_queue_url,
                                               ReceiptHandle=record.receipt_handle, VisibilityTimeout=later.delay)
        except ClientError:
            # This delivery's receipt is no longer valid (the message was received again meanwhile and
            # consumed by a duplicate that found the job taken): the job needs a message of its own.
            deps.sqs.send_message(QueueUrl=settings.generation_queue_url, MessageBody=record.body,
                                  DelaySeconds=min(later.delay, 900))
            return
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
