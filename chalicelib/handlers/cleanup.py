"""Cleanup queue: finishes deleting a project (avatars, history, generations, files) in bounded steps."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.dependencies import get_deps
from chalicelib.handlers import process_batch
from chalicelib.observability import logger


def _backfill(message: dict) -> None:
    """One step of the HOME backfill of a project shared for the first time (issue 30)."""
    from chalicelib.teams import service as teams

    user_id, project_id, start_key = message.get("userId"), message.get("projectId"), message.get("startKey")
    if not isinstance(user_id, str) or not isinstance(project_id, str) or not isinstance(start_key, (dict, type(None))):
        logger.error("malformed backfill message dropped")
        return
    next_key = teams.backfill_step(user_id, project_id, start_key)
    if next_key is not None:
        deps = get_deps()
        teams.send_backfill(deps.sqs, deps.settings.cleanup_queue_url, user_id, project_id, next_key)


def _purge(record: Any) -> None:
    from chalicelib.projects.service import purge_deleted_project, purge_step, send_purge
    from chalicelib.teams.service import BACKFILL_MESSAGE

    try:
        message = json.loads(record.body)
    except ValueError:
        message = None
    if isinstance(message, dict) and message.get("type") == BACKFILL_MESSAGE:
        return _backfill(message)
    try:
        message = json.loads(record.body)
        user_id, project_id, step = message["userId"], message["projectId"], message.get("step")
        if not isinstance(user_id, str) or not isinstance(project_id, str):
            raise TypeError("ids are strings")
        if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
            raise TypeError("step is a whole number")
    except (ValueError, KeyError, TypeError):
        # A malformed message can never succeed: log it and let it go rather than loop to the DLQ.
        logger.error("malformed cleanup message dropped", extra={"messageId": record.message_id})
        return
    deps = get_deps()
    outcome = purge_deleted_project(deps.dynamodb, deps.storage, user_id, project_id,
                                    batch_size=deps.settings.purge_batch_size, step=step)
    if outcome == "more":
        # The next batch in a message of its own: a large project never races one function timeout.
        # If this send fails the chain stalls, and the sweeper restarts it after the grace period.
        # The chain has moved one step on; a message from before steps learns which from the tombstone.
        next_step = step + 1 if step is not None else purge_step(user_id, project_id)
        send_purge(deps.sqs, deps.settings.cleanup_queue_url, user_id, project_id, next_step)


def handle(event: Any) -> dict:
    return process_batch(event, _purge)
