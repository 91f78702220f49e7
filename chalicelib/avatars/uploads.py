"""Uploads: the browser sends the bytes straight to S3 with a presigned POST; a worker fed by the
bucket's notifications validates them and turns the avatar `ready` (or `rejected`).

    request_uploads()          avatars in status `uploading` (with a DynamoDB TTL) + one presigned POST each
    process_uploaded_object()  the worker step for one object under uploads/

Nothing here knows about HTTP or event shapes; the API and the SQS handler translate.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import clock, ids

from chalicelib.avatars import service as avatars

from chalicelib.avatars import file_intents, store
from chalicelib.aws.db import Transaction, TransactionCancelled
from chalicelib.teams import store as team_store
from chalicelib.errors import NotFoundError, ValidationError
from chalicelib.observability import logger
from chalicelib.projects import store as project_store
from chalicelib.aws.storage import display_key, image_key, parse_upload_key, thumbnail_key, upload_key

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import AvatarModel
    from chalicelib.config import Settings
    from chalicelib.aws.storage import Storage

# Kept here as well as in chalicelib.avatars.images so the API function never imports the Pillow module.
ALLOWED_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")


@dataclass(frozen=True)
class UploadTicket:
    url: str
    fields: dict[str, str]
    expires_at: str


@dataclass(frozen=True)
class PendingUpload:
    avatar: AvatarModel
    ticket: UploadTicket


# ---- asking for uploads ---------------------------------------------------------------------

def _check_files(files: list[dict], settings: "Settings") -> None:
    """Every declared file is checked before anything is written: one bad file refuses the batch."""
    if not files:
        raise ValidationError("At least one file is required", details={"field": "files"})
    if len(files) > settings.upload_batch_max:
        raise ValidationError(f"At most {settings.upload_batch_max} files per request",
                              details={"field": "files", "max": settings.upload_batch_max, "given": len(files)})
    problems = []
    for index, spec in enumerate(files):
        if spec.get("contentType") not in ALLOWED_CONTENT_TYPES:
            problems.append({"index": index, "field": "contentType",
                             "message": f"must be one of {', '.join(ALLOWED_CONTENT_TYPES)}"})
        size = spec.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= settings.upload_max_bytes:
            problems.append({"index": index, "field": "size",
                             "message": f"must be between 1 and {settings.upload_max_bytes} bytes"})
    if problems:
        raise ValidationError("The file cannot be uploaded", code="upload_not_allowed",
                              details={"files": problems, "maxBytes": settings.upload_max_bytes,
                                       "contentTypes": list(ALLOWED_CONTENT_TYPES)})


def request_uploads(connection: Any, storage: "Storage", settings: "Settings", user_id: str, project_id: str,
                    files: list[dict]) -> list[PendingUpload]:
    """Create one `uploading` avatar per file and a presigned POST for each.

    `files` are dicts of the avatar fields (name, persona*, attributes) plus `contentType` and `size`.
    All avatars are written in ONE transaction with a ConditionCheck on the project, so a project
    deleted meanwhile (its cleanup already listed its avatars) cannot gain an orphan.
    """
    _check_files(files, settings)
    now = clock.now()
    ttl = clock.epoch(now) + settings.upload_pending_ttl_seconds
    deadline = clock.iso(now + timedelta(seconds=settings.upload_deadline_seconds))
    created = []
    from chalicelib.avatars.suggestions import initial_fields  # attribute suggestions after ready (issue 30)

    for spec in files:
        avatar_id = ids.new_id("ava")
        key = upload_key(user_id, avatar_id)
        created.append(avatars.new_avatar(
            user_id=user_id, project_id=project_id, avatar_id=avatar_id, name=spec["name"], source_type="uploaded",
            status="uploading", fields=spec, upload_key=key, upload_content_type=spec["contentType"], ttl=ttl,
            deadline=deadline, **initial_fields(spec, settings),
        ))
    try:
        with Transaction(connection) as tx:
            project_store.require(tx, user_id, project_id)
            for avatar in created:
                store.add_new(tx, avatar, name=avatar.id)
                team_store.add_item_home(tx, "avatar", avatar.id, user_id, project_id, name=f"home:{avatar.id}")
    except TransactionCancelled as cancelled:
        if cancelled.failed("project"):
            raise NotFoundError("Project not found", details={"projectId": project_id}) from None
        raise
    expires = settings.upload_url_expiry_seconds
    expires_at = clock.iso(now + timedelta(seconds=expires))
    pending = []
    for avatar, spec in zip(created, files):
        # The policy caps the object at the size the client declared (checked against the limit above).
        post = storage.presigned_post(avatar.upload_key, spec["contentType"], spec["size"], expires)
        pending.append(PendingUpload(avatar, UploadTicket(post["url"], dict(post["fields"]), expires_at)))
    return pending


# ---- the worker step --------------------------------------------------------------------------

def process_uploaded_object(connection: Any, storage: "Storage", settings: "Settings", *, bucket: str, key: str,
                            size: int | None) -> str:
    """Validate one uploaded object and make its avatar `ready` or `rejected`. Safe to run twice.

    Returns what happened ("ready", "rejected" or "skipped: …") for logs and tests. Transient AWS
    errors propagate so the queue redelivers the message.
    """
    log = {"bucket": bucket, "key": key, "size": size}
    if bucket != storage.bucket:
        return _skip("foreign bucket", log)
    parsed = parse_upload_key(key)
    if parsed is None:
        return _skip("not an upload key", log)
    user_id, avatar_id = parsed
    avatar = store.get(user_id, avatar_id, consistent=True)
    if avatar is None:
        # Deleted (or expired) before the bytes arrived; the lifecycle rule removes the stray object.
        return _skip("no such avatar", log)
    if avatar.upload_key != key:
        return _skip("key does not belong to the avatar", log)
    if avatar.status != "uploading":
        # A duplicate event, or a retry after the status was written: make sure the original is gone.
        storage.delete([key])
        return _skip(f"avatar is {avatar.status}", log)

    if size is not None and size > settings.upload_max_bytes:
        return _reject(storage, avatar, key, "too_large",
                       f"The file is larger than {settings.upload_max_bytes // (1024 * 1024)} MB", log)
    data = storage.get_if_exists(key, settings.upload_max_bytes)
    if data is None:
        return _skip("object is gone", log)

    from chalicelib.avatars import images  # Pillow is loaded by the worker only

    try:
        processed = images.process_upload(data, max_pixels=settings.max_image_pixels,
                                          max_bytes=settings.upload_max_bytes, thumb_size=settings.thumbnail_size)
    except images.ImageRejectedError as exc:
        return _reject(storage, avatar, key, exc.code, exc.reason, log)
    except Exception as exc:  # noqa: BLE001 — hostile bytes can break a decoder anywhere: refuse, never loop
        logger.warning("image processing failed", extra={**log, "error": f"{type(exc).__name__}: {exc}"[:300]})
        return _reject(storage, avatar, key, "corrupt", "The image could not be read", log)

    info = processed.info
    keys = (image_key(user_id, avatar_id, info.format), thumbnail_key(user_id, avatar_id),
            display_key(user_id, avatar_id))
    file_intents.intend(list(keys))  # a crash before mark_ready leaves these for the sweeper to check
    storage.put(keys[0], processed.image, processed.image_content_type)
    storage.put(keys[1], processed.thumbnail, processed.thumbnail_content_type)
    storage.put(keys[2], processed.display, processed.display_content_type)
    became_ready = avatars.mark_ready(connection, avatar, image_key=keys[0], thumbnail_key=keys[1],
                                      width=info.width, height=info.height, fmt=info.format, size_bytes=info.bytes,
                                      from_statuses=("uploading",), display_key=keys[2])
    if not became_ready:
        _drop_unused_derivatives(storage, avatar, keys, log)
        storage.delete([key])
        return _skip("avatar changed while processing", log)
    storage.delete([key])
    logger.info("upload ready", extra={**log, "avatarId": avatar_id, "format": info.format,
                                       "width": info.width, "height": info.height})
    return "ready"


def _skip(why: str, log: dict) -> str:
    logger.info("upload event skipped", extra={**log, "reason": why})
    return f"skipped: {why}"


def _reject(storage: "Storage", avatar: AvatarModel, key: str, code: str, reason: str, log: dict) -> str:
    """Status first, then the object: a retry after a failed delete finds `rejected` and deletes again."""
    if not reject_avatar(avatar, code, reason):
        storage.delete([key])
        return _skip("avatar changed while rejecting", log)
    storage.delete([key])
    logger.info("upload rejected", extra={**log, "avatarId": avatar.id, "code": code, "statusReason": reason})
    return "rejected"


def reject_avatar(avatar: AvatarModel, code: str, reason: str) -> bool:
    """uploading → rejected with a code and a reason (the user sees why; it stays until they delete it).
    False when the avatar is no longer uploading (or gone)."""
    return store.reject(avatar, code, reason, now=clock.now_iso())


def dead_letter(storage: "Storage", *, bucket: str, key: str) -> str:
    """An upload event reached the DLQ (the worker kept failing on it): its avatar ends `rejected`."""
    if bucket != storage.bucket:
        return "skipped: foreign bucket"
    parsed = parse_upload_key(key)
    if parsed is None:
        return "skipped: not an upload key"
    avatar = store.get(*parsed, consistent=True)
    if avatar is None:
        return "skipped: no such avatar"
    if avatar.upload_key != key or avatar.status != "uploading":
        return f"skipped: avatar is {avatar.status}"
    if not reject_avatar(avatar, "internal", "The upload could not be processed; please upload it again"):
        return "skipped: changed meanwhile"
    storage.delete([key])
    return "rejected"


def expire(storage: "Storage", avatar: AvatarModel) -> str:
    """The sweeper: an upload still `uploading` past its deadline ends `rejected`, saying why."""
    arrived = avatar.upload_key is not None and storage.head(avatar.upload_key) is not None
    code, reason = (("internal", "The upload could not be processed; please upload it again") if arrived else
                    ("not_received", "The file never arrived; please upload it again"))
    if not reject_avatar(avatar, code, reason):
        return "skipped: changed meanwhile"
    storage.delete([avatar.upload_key])
    return "rejected"


def _drop_unused_derivatives(storage: "Storage", avatar: AvatarModel, keys: tuple[str, ...], log: dict) -> None:
    """mark_ready refused: a concurrent duplicate already made it ready (keep the files it points at),
    or the avatar or its project is gone (the files would be orphans)."""
    fresh = store.reread(avatar)
    if fresh is not None and fresh.status == "ready" and fresh.image_key == keys[0]:
        return
    logger.info("derivatives dropped", extra={**log, "avatarId": avatar.id})
    storage.delete(list(keys))
