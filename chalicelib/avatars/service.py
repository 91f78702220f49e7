"""Avatars: reading, listing with filters, editing, deleting, and the transition to `ready`
that every source (upload, generation, preset) goes through so counters stay exact."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datetime import timedelta

from chalicelib import clock, ids

from chalicelib.avatars import store, vocabulary
from chalicelib.avatars.crops import crop_json
from chalicelib.aws.db import Transaction, TransactionCancelled
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.aws.models import AttributesMap, AvatarModel, PersonaMap
from chalicelib.projects import store as project_store
from chalicelib.teams import store as team_store
from chalicelib.users import store as user_store

# A restyle (image_to_image) is a generated avatar: counted with text_to_image.
SOURCE_COUNTER = {"uploaded": "avatars_uploaded", "text_to_image": "avatars_generated", "preset": "avatars_preset",
                  "image_to_image": "avatars_generated"}
PERSONA_FIELDS = ("personaName", "personaAge", "personaPersonality", "personaBackground")
ATTRIBUTE_FIELDS = ("gender", "ageRange", "ethnicity", "bodyType", "hairStyle", "hairColor", "eyeColor",
                    "skinTone", "style", "hairLength", "glasses", "facialHair", "clothingStyle", "background",
                    "expression")
_ATTR_TO_MODEL = {"gender": "gender", "ageRange": "age_range", "ethnicity": "ethnicity", "bodyType": "body_type",
                  "hairStyle": "hair_style", "hairColor": "hair_color", "eyeColor": "eye_color",
                  "skinTone": "skin_tone", "style": "style", "hairLength": "hair_length", "glasses": "glasses",
                  "facialHair": "facial_hair", "clothingStyle": "clothing_style", "background": "background",
                  "expression": "expression"}

# List filters on the closed-vocabulary attributes of issue 30 (query parameters of the same names).
FILTERABLE_VISUAL = ("hairLength", "glasses", "facialHair", "clothingStyle", "background", "expression")


@dataclass(frozen=True)
class AvatarFilters:
    source_type: str | None = None
    gender: str | None = None
    style: str | None = None
    search: str | None = None
    status: str | None = None
    # (attribute, value) of the closed-vocabulary visual attributes (issue 30), e.g. (("glasses", "none"),).
    attributes: tuple[tuple[str, str], ...] = ()


# ---- value mapping ---------------------------------------------------------------------------

def persona_from_fields(fields: dict) -> PersonaMap | None:
    if not any(fields.get(k) not in (None, [], "") for k in PERSONA_FIELDS):
        return None
    return PersonaMap(name=fields.get("personaName"), age=fields.get("personaAge"),
                      personality=list(fields.get("personaPersonality") or []) or None,
                      background=fields.get("personaBackground"))


def attributes_from_fields(fields: dict) -> AttributesMap | None:
    values = {_ATTR_TO_MODEL[k]: vocabulary.canonical(k, fields.get(k)) for k in ATTRIBUTE_FIELDS
              if fields.get(k) not in (None, "")}
    return AttributesMap(**values) if values else None


def persona_fields(avatar: AvatarModel) -> dict:
    p = avatar.persona
    return {
        "personaName": p.name if p else None,
        "personaAge": int(p.age) if p and p.age is not None else None,
        "personaPersonality": list(p.personality or []) if p else [],
        "personaBackground": p.background if p else None,
    }


def attribute_fields(avatar: AvatarModel) -> dict:
    a = avatar.attributes
    # Items stored under an old spelling read back in the current one.
    return {k: (vocabulary.canonical(k, getattr(a, m)) if a else None) for k, m in _ATTR_TO_MODEL.items()}


def image_index(avatar: AvatarModel) -> int | None:
    """Which image of its generation this avatar is (0–3), so a batch is shown in the order it was
    asked for: ids of one batch share their time part and differ by a hash, so they sort at random."""
    if not avatar.generation_id:
        return None
    for index in range(ids.MAX_IMAGES):
        if ids.avatar_id_for(avatar.generation_id, index) == avatar.id:
            return index
    return None


def to_json(avatar: AvatarModel, storage: Any, url_expiry: int) -> dict:
    return {
        "id": avatar.id,
        "projectId": avatar.project_id,
        "name": avatar.name,
        "status": avatar.status,
        "statusReason": avatar.status_reason,
        "statusCode": avatar.status_code,
        "sourceType": avatar.source_type,
        "imageUrl": storage.presigned_get(avatar.image_key, url_expiry) if avatar.status == "ready" else None,
        "thumbnailUrl": storage.presigned_get(avatar.thumbnail_key, url_expiry) if avatar.status == "ready" else None,
        "displayUrl": storage.presigned_get(avatar.display_key, url_expiry) if avatar.status == "ready" else None,
        "crop": crop_json(avatar),
        "width": int(avatar.width) if avatar.width is not None else None,
        "height": int(avatar.height) if avatar.height is not None else None,
        "format": avatar.format,
        "bytes": int(avatar.size_bytes) if avatar.size_bytes is not None else None,
        **persona_fields(avatar),
        **attribute_fields(avatar),
        "prompt": avatar.prompt,
        "seed": int(avatar.seed) if avatar.seed is not None else None,
        "generationId": avatar.generation_id,
        "imageIndex": image_index(avatar),
        "presetId": avatar.preset_id,
        "sourceAvatarId": avatar.source_avatar_id,
        "version": int(avatar.version_count or 0),  # the newest version (GET …/versions); 0: never changed
        "usageCount": int(avatar.usage_count or 0),
        "lastUsedAt": avatar.last_used_at,
        "createdAt": avatar.created_at,
        "updatedAt": avatar.updated_at,
        **suggestion_fields(avatar),
    }


def suggestion_fields(avatar: AvatarModel) -> dict:
    """Attribute suggestions (chalicelib.avatars.suggestions): {attribute: {value, score}} and their status,
    shown while the upload is on its way or ready (null otherwise, and on avatars that never asked)."""
    status = avatar.suggestion_status if avatar.status in ("uploading", "ready") else None
    raw = avatar.suggestions.as_dict() if status == "ready" and avatar.suggestions is not None else {}
    return {"suggestionStatus": status,
            "suggestions": {k: {"value": v["value"], "score": round(float(v["score"]), 4)}
                            for k, v in sorted(raw.items())} if status else None}


# ---- reads ------------------------------------------------------------------------------------

def get_avatar(user_id: str, avatar_id: str, *, consistent: bool = False) -> AvatarModel:
    avatar = store.get(user_id, avatar_id, consistent=consistent)
    if avatar is None or avatar.status == "deleting":  # a delete in progress is already gone for the user
        raise NotFoundError("Avatar not found", details={"avatarId": avatar_id})
    return avatar


def list_avatars(user_id: str, project_id: str, *, limit: int, start_key: dict | None,
                 filters: AvatarFilters = AvatarFilters()) -> tuple[list[AvatarModel], dict | None]:
    """One project's avatars, newest first (store.page_of_project), never one being deleted."""
    # Old items keep the spelling they were stored with: a filter matches every spelling of its value.
    return store.page_of_project(
        user_id, project_id, limit=limit, start_key=start_key, source_type=filters.source_type,
        status=filters.status,
        genders=tuple(vocabulary.spellings("gender", filters.gender)) if filters.gender else (),
        styles=tuple(vocabulary.spellings("style", filters.style)) if filters.style else (),
        name_contains=filters.search.strip().lower() if filters.search else None,
        attributes=tuple((_ATTR_TO_MODEL[key], value) for key, value in filters.attributes))


# ---- writes -----------------------------------------------------------------------------------

def new_avatar(*, user_id: str, project_id: str, avatar_id: str, name: str, source_type: str, status: str,
               fields: dict, deadline: str | None = None, **extra: Any) -> AvatarModel:
    """An avatar not yet written, from the API's fields; in the sweep index by `deadline` when given."""
    return store.new_item(user_id=user_id, project_id=project_id, avatar_id=avatar_id, name=name,
                          source_type=source_type, status=status, persona=persona_from_fields(fields),
                          attributes=attributes_from_fields(fields), now=clock.now_iso(), deadline=deadline, **extra)


def mark_ready(connection: Any, avatar: AvatarModel, *, image_key: str, thumbnail_key: str, width: int,
               height: int, fmt: str, size_bytes: int, from_statuses: tuple[str, ...],
               display_key: str | None = None) -> bool:
    """The one transition to `ready`: updates the avatar and the counters in one transaction.

    Returns False (and changes nothing) when the avatar is no longer in one of `from_statuses`
    (a duplicate event, a delete) or its project is gone (deleted meanwhile).
    """
    now = clock.now()
    try:
        with Transaction(connection) as tx:
            store.add_ready(tx, avatar, image_key=image_key, thumbnail_key=thumbnail_key, width=width,
                            height=height, fmt=fmt, size_bytes=size_bytes, display_key=display_key,
                            from_statuses=from_statuses, now=clock.iso(now))
            count_new_avatar(tx, avatar, now)
    except TransactionCancelled as cancelled:
        if cancelled.conditions_failed:
            return False
        raise
    return True


def count_new_avatar(tx: Transaction, avatar: AvatarModel, now: Any, count: int = 1) -> None:
    """The counter writes of an avatar becoming ready, for the caller's transaction: the project's
    avatarCount (operation "project", which also checks the project still exists) and the user's
    totals ("stats", and "day" for uploads). `count`: that many avatars like it (a job's images)."""
    project_store.count_avatars(tx, avatar.user_id, avatar.project_id, count)
    user_store.count_avatars(tx, avatar.user_id, SOURCE_COUNTER[avatar.source_type], count)
    if avatar.source_type == "uploaded":
        user_store.count_uploads(tx, avatar.user_id, now, count)


# An avatar being deleted that is still there after this long is finished by the sweeper.
DELETE_GRACE_SECONDS = 300
# TransactWriteItems takes 100 items: the avatar, project and stats, and per-app totals up to this many.
_APP_TOTALS_IN_TRANSACTION = 90


def files_of(avatar: AvatarModel) -> list[str]:
    """Every S3 object an avatar item points at."""
    return [k for k in (avatar.upload_key, avatar.image_key, avatar.thumbnail_key, avatar.display_key) if k]


def _retire(connection: Any, avatar: AvatarModel, *, project_exists: bool) -> None:
    """Step 1 of a delete: the avatar turns `deleting` and leaves every counter in one transaction,
    conditional on the status and usage count it was read with. From then on no usage event can land
    on it (they require `ready`), so what the counters lose is exactly what it had."""
    now = clock.now()
    deadline = clock.iso(now + timedelta(seconds=DELETE_GRACE_SECONDS))
    usage = int(avatar.usage_count or 0)
    counts = store.app_counts(avatar) if avatar.status == "ready" and usage else {}
    apps = sorted(counts.items())
    with Transaction(connection) as tx:
        store.retire(tx, avatar, now=clock.iso(now), deadline=deadline)
        if avatar.status == "ready":
            if project_exists:
                project_store.count_avatars(tx, avatar.user_id, avatar.project_id, -1)
            user_store.count_avatars(tx, avatar.user_id, SOURCE_COUNTER[avatar.source_type], -1, usage=-usage)
            for app_id, count in apps[:_APP_TOTALS_IN_TRANSACTION]:
                user_store.count_app_usage(tx, avatar.user_id, app_id, -count, name=f"app:{app_id}")
    for app_id, count in apps[_APP_TOTALS_IN_TRANSACTION:]:  # a rare avatar used by over 90 apps
        user_store.count_app_usage_now(avatar.user_id, app_id, -count)


def end_exports(user_id: str, scope: str, target_id: str) -> None:
    """No export outlives what it exported (issue 29): each expires now; the sweeper removes its files."""
    from chalicelib.exports import store as export_store

    now = clock.now()
    for export in export_store.of_target(user_id, scope, target_id):
        if export.status != "expired":
            export_store.cut_short(export, now)


def delete_avatar(connection: Any, storage: Any, avatar: AvatarModel, *, project_exists: bool = True) -> bool:
    """Retire the avatar (status `deleting`, counters), then remove its history and files, then the item.

    Safe to repeat from any point: a crash leaves a `deleting` avatar in the sweep index, and the
    sweeper (or the project purge) calls this again. Returns False when the avatar was already gone.
    """
    for _ in range(5):
        if avatar.status == "deleting":
            break
        try:
            _retire(connection, avatar, project_exists=project_exists)
            break
        except TransactionCancelled as cancelled:
            if cancelled.failed("project") and not cancelled.failed("avatar"):
                project_exists = False  # the project is being purged: its count goes with it
            elif not (cancelled.failed("avatar") or cancelled.conflict):
                raise
        # it changed meanwhile (a usage event, an upload finishing) or is gone: read it again
        fresh = store.reread(avatar)
        if fresh is None:
            return False
        avatar = fresh
    else:
        raise ConflictError("Avatar changed while deleting; try again")
    from chalicelib.sharing import service as sharing

    sharing.remove_for_avatar(avatar.user_id, avatar.id)  # its share links (their pages answer 410)
    end_exports(avatar.user_id, "avatar", avatar.id)
    store.delete_history(avatar.user_id, avatar.id)
    storage.delete(files_of(avatar))
    # Its HOME item (issue 30) before the item itself: a crash in between leaves the `deleting` avatar,
    # which the sweeper finishes, this included.
    team_store.delete_item_homes("avatar", [avatar.id])
    return store.delete_retired(avatar)
