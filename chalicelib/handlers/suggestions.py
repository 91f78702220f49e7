"""Attribute suggestion requests (chalicelib.avatars.suggestions) on the upload queue: the image worker
sends one after an upload turns `ready`, and answers it with one model call, apart from the upload."""
from __future__ import annotations

from typing import Any

from chalicelib.dependencies import get_deps
from chalicelib.observability import logger


def request_suggestions(upload_key: str) -> None:
    """After an upload turned ready (or a duplicate event found it ready): ask for its suggestions."""
    from chalicelib.avatars import suggestions
    from chalicelib.aws.storage import parse_upload_key

    parsed = parse_upload_key(upload_key)
    deps = get_deps()
    if parsed is not None and suggestions.request(deps.sqs, deps.settings, *parsed):
        logger.debug("attribute suggestions requested", extra={"avatarId": parsed[1]})


def handle_suggestion_request(record: Any, context: Any = None) -> bool:
    """Handle `record` if it is a suggestion request; False leaves it to the other upload-queue handlers.

    When the invocation has too little time left for the model call (a batch of several), the request
    is handed on: sent again as a new message, and this one succeeds."""
    from chalicelib.avatars import suggestions

    parsed = suggestions.parse_message(record.body)
    if parsed is None:
        return False
    user_id, avatar_id, hand_ons = parsed
    if not user_id:
        logger.error("malformed suggestion request dropped", extra={"messageId": record.message_id})
        return True
    deps = get_deps()
    time_left = context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else None
    try:
        outcome = suggestions.run(deps.storage, deps.settings, deps.attribute_model, user_id, avatar_id,
                                  time_left_ms=time_left)
    except suggestions.OutOfTimeError:
        if hand_ons >= suggestions.MAX_HAND_ONS:
            outcome = suggestions.dead_letter(user_id, avatar_id, code="no_time")
        else:
            deps.sqs.send_message(QueueUrl=deps.settings.upload_queue_url,
                                  MessageBody=suggestions.message(user_id, avatar_id, hand_ons + 1))
            outcome = "handed on"
    logger.debug("suggestion request handled", extra={"avatarId": avatar_id, "outcome": outcome})
    return True


def end_pending_suggestions(upload_key: str) -> None:
    """An upload event reached the DLQ although its avatar is ready (the step after `ready` kept failing,
    sending the suggestion request among it): suggestions still pending end `unavailable`."""
    from chalicelib.avatars import suggestions
    from chalicelib.aws.storage import parse_upload_key

    parsed = parse_upload_key(upload_key)
    if parsed is not None:
        outcome = suggestions.dead_letter(*parsed)
        logger.warning("suggestions of a dead-lettered upload", extra={"avatarId": parsed[1], "outcome": outcome})


def handle_suggestion_dead_letter(record: Any) -> bool:
    from chalicelib.avatars import suggestions

    parsed = suggestions.parse_message(record.body)
    if parsed is None:
        return False
    if parsed[0]:
        outcome = suggestions.dead_letter(parsed[0], parsed[1])
        logger.warning("suggestion request dead-lettered", extra={"avatarId": parsed[1], "outcome": outcome})
    return True
