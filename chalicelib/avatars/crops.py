"""Chosen crop: the square of the upright image the thumbnail shows.

    check_crop(crop, width, height)      400 unless the square lies inside the image
    crop_changed(avatar, crop)           whether a crop is a change that may be made now (store.edit bumps crop_version)
    request_thumbnail(sqs, url, …)       asks the image worker (upload queue) to re-make the thumbnail
    remake_thumbnail(storage, …)         the worker step: thumbnail of the avatar's current crop

The API only records the crop; Pillow runs in the worker (the API's cold start never loads it).
Each crop change bumps `crop_version`, and the thumbnail made for version n is stored under a key
of its own (storage.thumbnail_key), so its presigned URL changes and no cache shows the old one;
a key is never reused, so deleting the previous thumbnail can never remove a newer one.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib.avatars import file_intents, store
from chalicelib.errors import ConflictError, DependencyError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import AvatarModel
    from chalicelib.config import Settings
    from chalicelib.aws.storage import Storage

THUMBNAIL_MESSAGE = "avatar.thumbnail"


def crop_json(avatar: AvatarModel) -> dict | None:
    c = avatar.crop
    return {"x": int(c.x), "y": int(c.y), "size": int(c.size)} if c is not None else None


def check_crop(crop: dict, width: int, height: int) -> None:
    x, y, size = crop["x"], crop["y"], crop["size"]
    if x + size > width or y + size > height:
        raise ValidationError(
            f"The crop must be a square inside the image, which is {width}x{height} pixels: "
            f"x + size at most {width} and y + size at most {height}",
            code="crop_outside_image",
            details={"field": "crop", "width": width, "height": height, "crop": crop,
                     "maxSize": min(width - min(x, width), height - min(y, height))})


def crop_changed(avatar: AvatarModel, crop: dict | None) -> bool:
    """Whether setting `crop` (None: back to the centre) changes anything; a change needs the image
    ready (409) and a square inside it (400)."""
    if crop == crop_json(avatar):
        return False
    if avatar.status != "ready" or avatar.width is None or avatar.height is None:
        raise ConflictError("The avatar's image is not ready yet; choose a crop once it is",
                            details={"status": avatar.status})
    if crop is not None:
        check_crop(crop, int(avatar.width), int(avatar.height))
    return True


def request_thumbnail(sqs: Any, queue_url: str | None, user_id: str, avatar_id: str) -> None:
    """One message; the worker reads the avatar's crop then, so duplicates and reorderings are harmless."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not queue_url:
        raise DependencyError("The image queue is not configured")
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(
            {"type": THUMBNAIL_MESSAGE, "userId": user_id, "avatarId": avatar_id}))
    except (BotoCoreError, ClientError) as exc:
        # The crop is saved; sending the same crop again re-sends the request.
        raise DependencyError("The crop is saved but its thumbnail could not be requested; try again") from exc


def remake_thumbnail(storage: "Storage", settings: "Settings", user_id: str, avatar_id: str) -> str:
    """Make the thumbnail of the avatar's current crop and point the avatar at it. Safe to run twice
    and concurrently: a run whose crop was replaced meanwhile drops its file and changes nothing."""
    from chalicelib.avatars import images
    from chalicelib.observability import logger
    from chalicelib.aws.storage import thumbnail_key

    log = {"userId": user_id, "avatarId": avatar_id}
    avatar = store.get(user_id, avatar_id, consistent=True)
    if avatar is None:
        return "skipped: no such avatar"
    if avatar.status != "ready" or not avatar.image_key:
        return f"skipped: avatar is {avatar.status}"
    version = int(avatar.crop_version or 0)
    key = thumbnail_key(user_id, avatar_id, version)
    old = avatar.thumbnail_key
    if old == key:
        return "skipped: thumbnail is current"
    data = storage.get_if_exists(avatar.image_key, 50 * 1024 * 1024)
    if data is None:
        return "skipped: image is gone"
    crop = avatar.crop
    try:
        thumbnail = images.thumbnail_from_bytes(
            data, size=settings.thumbnail_size, max_pixels=settings.max_image_pixels,
            crop=images.Crop(int(crop.x), int(crop.y), int(crop.size)) if crop is not None else None)
    except images.ImageRejectedError as exc:
        # Our own stored image: never expected; retrying would not help.
        logger.error("stored image could not be cropped", extra={**log, "reason": exc.reason})
        return "failed: " + exc.code
    file_intents.intend([key])  # if the update below loses (or never runs), the sweeper removes the file
    storage.put(key, thumbnail, "image/jpeg")
    if not store.set_thumbnail(avatar, key, crop_version=version, previous=old):
        fresh = store.reread(avatar)
        if fresh is None or fresh.thumbnail_key != key:  # a newer crop (or a deletion) won: ours is unused
            storage.delete([key])
        return "skipped: changed meanwhile"
    storage.delete([old])
    logger.info("thumbnail re-made", extra={**log, "cropVersion": version})
    return "remade"
