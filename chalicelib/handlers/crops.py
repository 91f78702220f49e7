"""Thumbnail requests (a crop changed) arriving on the upload queue, the queue of the image worker:
it already has Pillow loaded and the bucket rights, and answers within a second or two."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.dependencies import get_deps
from chalicelib.observability import logger


def handle_thumbnail_request(record: Any) -> bool:
    """Handle `record` if it is a thumbnail request (chalicelib.avatars.crops.request_thumbnail); False leaves
    it to the upload handler (S3 notifications)."""
    from chalicelib.avatars.crops import THUMBNAIL_MESSAGE, remake_thumbnail

    try:
        message = json.loads(record.body)
    except ValueError:
        return False
    if not isinstance(message, dict) or message.get("type") != THUMBNAIL_MESSAGE:
        return False
    user_id, avatar_id = message.get("userId"), message.get("avatarId")
    if not (isinstance(user_id, str) and user_id and isinstance(avatar_id, str) and avatar_id):
        # It can never succeed: log it rather than loop it to the DLQ.
        logger.error("malformed thumbnail request dropped", extra={"messageId": record.message_id})
        return True
    deps = get_deps()
    outcome = remake_thumbnail(deps.storage, deps.settings, user_id, avatar_id)
    logger.debug("thumbnail request handled", extra={"avatarId": avatar_id, "outcome": outcome})
    return True
