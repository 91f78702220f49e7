"""Export queue: each message is `{"type": "export.step", "userId", "exportId", "step"}` — one step of
an export's chain (chalicelib/exports/service.py run_step). A step that runs short of time hands on
to the next through a new message; a duplicate or a message of an older step changes nothing."""
from __future__ import annotations

import functools
import math
from typing import Any

from chalicelib.dependencies import get_deps
from chalicelib.handlers import process_batch
from chalicelib.observability import logger


def _remaining(context: Any) -> float:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return math.inf
    return context.get_remaining_time_in_millis() / 1000


def _step(record: Any, context: Any = None) -> None:
    from chalicelib.exports import service as exports
    from chalicelib.exports.files import ExportFiles

    try:
        user_id, export_id, step = exports.parse_message(record.body)
    except (ValueError, KeyError, TypeError):
        # Can never succeed: logged and dropped rather than looped into the DLQ.
        logger.error("malformed export message dropped", extra={"messageId": record.message_id})
        return
    deps = get_deps()
    settings = deps.settings
    outcome = exports.run_step(
        ExportFiles.of(deps.storage), settings, user_id, export_id, step, remaining=lambda: _remaining(context),
        hand_on=lambda next_step: exports.send_step(deps.sqs, settings.export_queue_url, user_id, export_id,
                                                    next_step))
    logger.info("export step", extra={"exportId": export_id, "step": step, "outcome": outcome})


def handle(event: Any) -> dict:
    return process_batch(event, functools.partial(_step, context=getattr(event, "context", None)))
