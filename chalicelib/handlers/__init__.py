"""Event handlers: turn SQS records into calls on the domain.

Each handler module exposes `handle(event)` taking Chalice's SQSEvent and returning a
partial batch response, so one bad record never fails or repeats the others.
"""
from __future__ import annotations

from typing import Any, Callable


def process_batch(event: Any, record_handler: Callable[[Any], Any]) -> dict:
    """Powertools batch processing over a Chalice SQSEvent → {"batchItemFailures": [...]}."""
    # Imported here: the API function never pays for the batch utility at cold start.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event.to_dict(), record_handler=record_handler,
                                    processor=processor, context=getattr(event, "context", None))
