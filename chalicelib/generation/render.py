"""A generation as the API and its events show it."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.avatars import service as avatars
from chalicelib.avatars import store as avatar_store
from chalicelib.generation.spec import images_of

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import GenerationModel
    from chalicelib.aws.storage import Storage
    from chalicelib.config import Settings


def to_json(gen: "GenerationModel", avatar: dict | None = None, *, avatars_json: list[dict] | None = None,
            queue_position: int | None = None) -> dict:
    request = dict(gen.request.as_dict()) if gen.request is not None else {}
    listed = avatars_json if avatars_json is not None else ([avatar] if avatar else [])
    return {
        "id": gen.id, "projectId": gen.project_id, "status": gen.status, "stage": gen.stage,
        "progress": int(gen.progress or 0), "attempts": int(gen.attempts or 0), "errorMessage": gen.error_message,
        "errorCode": gen.error_code, "prompt": gen.prompt, "negativePrompt": gen.negative_prompt, "request": request,
        "avatarId": gen.avatar_id, "avatar": avatar if avatar is not None else (listed[0] if listed else None),
        "avatars": listed, "avatarIds": list(gen.avatar_ids or ([gen.avatar_id] if gen.avatar_id else [])),
        "numImages": images_of(request), "imagesMade": int(gen.images_made or 0),
        "imagesFailed": int(gen.images_failed or 0),
        "failures": [dict(f.as_dict() if hasattr(f, "as_dict") else f) for f in (gen.failures or [])],
        "safety": gen.safety, "model": gen.model, "provider": gen.provider, "presetId": request.get("presetId"),
        "createdAt": gen.created_at, "updatedAt": gen.updated_at, "queuedAt": gen.queued_at or gen.created_at,
        "startedAt": gen.started_at, "completedAt": gen.completed_at, "deadLetteredAt": gen.dead_lettered_at,
        "queuePosition": queue_position if gen.status == "pending" else None, "metrics": metrics_of(gen),
        "images": images_json(gen, images_of(request)),
    }


_IMAGE_STATUS = {"todo": "pending", "done": "done", "failed": "failed"}


def images_json(gen: "GenerationModel", count: int) -> list[dict]:
    """Each image's status, so a page can hold a tile for it until it lands. A job from before
    slots (or not yet claimed) shows every image pending, or — once ended — what its lists say."""
    slots = [dict(s.as_dict() if hasattr(s, "as_dict") else s) for s in (gen.slots or [])]
    if not slots:
        made = list(gen.avatar_ids or ([gen.avatar_id] if gen.avatar_id else []))
        failed = {int(f["index"]): f for f in (dict(f.as_dict() if hasattr(f, "as_dict") else f)
                                                for f in (gen.failures or []))}
        slots = []
        for i in range(count):
            if i in failed:
                slots.append({"state": "failed", "code": failed[i].get("code")})
            elif made and gen.status in ("completed",):
                slots.append({"state": "done", "avatarId": made.pop(0)})
            else:
                slots.append({"state": "todo"})
    return [{"index": i, "status": _IMAGE_STATUS.get(s.get("state"), "pending"), "avatarId": s.get("avatarId"),
             "errorCode": s.get("code"), "retrying": s.get("state") == "todo" and bool(s.get("code"))}
            for i, s in enumerate(slots)]


def ms_between(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    return max(0, int(round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000)))


def metrics_of(gen: "GenerationModel") -> dict:
    """queueMs: queued → first start; providerMs: time in the image service (and safety check) of the
    run that finished it; totalMs: queued → finished."""
    queued = gen.queued_at or gen.created_at
    return {"queueMs": ms_between(queued, gen.started_at),
            "providerMs": int(gen.provider_ms) if gen.provider_ms is not None else None,
            "totalMs": ms_between(queued, gen.completed_at), "attempts": int(gen.attempts or 0)}


def avatar_json(user_id: str, generation: "GenerationModel", storage: "Storage", url_expiry: int) -> dict | None:
    made = avatars_json(user_id, generation, storage, url_expiry)
    return made[0] if made else None


def avatars_json(user_id: str, generation: "GenerationModel", storage: "Storage", url_expiry: int) -> list[dict]:
    """The job's avatars made so far and still there, in image order: one BatchGet (at most 4 keys).
    A running job shows the images it has already made."""
    ids_ = list(generation.avatar_ids or ([generation.avatar_id] if generation.avatar_id else []))
    if not ids_:
        return []
    found = avatar_store.read_many(user_id, ids_)
    return [avatars.to_json(found[i], storage, url_expiry) for i in ids_ if i in found]  # deleted since: left out


def queue_position(sqs: Any, settings: "Settings", generation: "GenerationModel") -> int | None:
    """Approximately how many jobs are waiting with this one (1 = next): the queue's visible and
    delayed messages (one GetQueueAttributes call). SQS standard queues don't keep order, so this is
    the depth of the queue the job waits in, not an exact rank; None if unknown."""
    if generation.status != "pending" or not settings.generation_queue_url:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=settings.generation_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
        return max(1, waiting + int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)))
    except (BotoCoreError, ClientError, KeyError, ValueError):
        return None
