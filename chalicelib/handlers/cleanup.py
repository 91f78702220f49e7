"""Cleanup queue: finishes deleting a project (avatars, history, generations, files)."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.dependencies import get_deps
from chalicelib.handlers import process_batch
from chalicelib.observability import logger


def _purge(record: Any) -> None:
    from chalicelib.projects import purge_deleted_project

    try:
        message = json.loads(record.body)
        user_id, project_id = message["userId"], message["projectId"]
    except (ValueError, KeyError, TypeError):
        # A malformed message can never succeed: log it and let it go rather than loop to the DLQ.
        logger.error("malformed cleanup message dropped", extra={"messageId": record.message_id})
        return
    deps = get_deps()
    purge_deleted_project(deps.dynamodb, deps.storage, user_id, project_id)


def handle(event: Any) -> dict:
    return process_batch(event, _purge)
