"""What a job asks for and how it is named: its image count, the avatar ids its images get, the
request hash an Idempotency-Key is bound to, and the queue message that carries it."""
from __future__ import annotations

import hashlib
import json

from chalicelib import ids

from chalicelib.ids import MAX_IMAGES, avatar_id_for  # noqa: F401 (the job's names, kept with the ids)


def images_of(request: dict) -> int:
    """How many images the job makes (1–4; requests from before issue 19 make one)."""
    try:
        return min(MAX_IMAGES, max(1, int(request.get("numImages") or 1)))
    except (TypeError, ValueError):
        return 1


def request_hash(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def job_message(user_id: str, generation_id: str) -> str:
    return json.dumps({"userId": user_id, "generationId": generation_id})


def parse_job(body: str) -> tuple[str, str]:
    """(userId, generationId) of a job message; ValueError when it is not one."""
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("not an object")
    user_id, generation_id = message.get("userId"), message.get("generationId")
    if not isinstance(user_id, str) or not user_id or not ids.is_valid_id(generation_id, "gen"):
        raise ValueError("userId and generationId are required")
    return user_id, generation_id
