"""Avatars: reading, listing with filters, editing, deleting, and the transition to `ready`
that every source (upload, generation, preset) goes through so counters stay exact."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import clock
from chalicelib.crops import crop_actions, crop_json
from chalicelib.db import fill_page, iterate_all, transaction_condition_failed
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.models import (
    META,
    AttributesMap,
    AvatarModel,
    PersonaMap,
    ProjectModel,
    UserDayModel,
    UserStatsModel,
    avatar_pk,
    project_items_pk,
    project_sk,
    user_pk,
)

SOURCE_COUNTER = {"uploaded": "avatars_uploaded", "text_to_image": "avatars_generated", "preset": "avatars_preset"}
PERSONA_FIELDS = ("personaName", "personaAge", "personaPersonality", "personaBackground")
ATTRIBUTE_FIELDS = ("gender", "ageRange", "ethnicity", "bodyType", "hairStyle", "hairColor", "eyeColor",
                    "skinTone", "style")
_ATTR_TO_MODEL = {"gender": "gender", "ageRange": "age_range", "ethnicity": "ethnicity", "bodyType": "body_type",
                  "hairStyle": "hair_style", "hairColor": "hair_color", "eyeColor": "eye_color",
                  "skinTone": "skin_tone", "style": "style"}


@dataclass(frozen=True)
class AvatarFilters:
    source_type: str | None = None
    gender: str | None = None
    style: str | None = None
    search: str | None = None
    status: str | None = None


# ---- value mapping ---------------------------------------------------------------------------

def persona_from_fields(fields: dict) -> PersonaMap | None:
    if not any(fields.get(k) not in (None, [], "") for k in PERSONA_FIELDS):
        return None
    return PersonaMap(name=fields.get("personaName"), age=fields.get("personaAge"),
                      personality=list(fields.get("personaPersonality") or []) or None,
                      background=fields.get("personaBackground"))


def attributes_from_fields(fields: dict) -> AttributesMap | None:
    values = {_ATTR_TO_MODEL[k]: fields.get(k) for k in ATTRIBUTE_FIELDS if fields.get(k) not in (None, "")}
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
    return {k: (getattr(a, m) if a else None) for k, m in _ATTR_TO_MODEL.items()}


def to_json(avatar: AvatarModel, storage: Any, url_expiry: int) -> dict:
    return {
        "id": avatar.id,
        "projectId": avatar.project_id,
        "name": avatar.name,
        "status": avatar.status,
        "statusReason": avatar.status_reason,
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
        "presetId": avatar.preset_id,
        "usageCount": int(avatar.usage_count or 0),
        "lastUsedAt": avatar.last_used_at,
        "createdAt": avatar.created_at,
        "updatedAt": avatar.updated_at,
    }


# ---- reads ------------------------------------------------------------------------------------

def get_avatar(user_id: str, avatar_id: str, *, consistent: bool = False) -> AvatarModel:
    try:
        return AvatarModel.get(avatar_pk(user_id, avatar_id), META, consistent_read=consistent)
    except DoesNotExist:
        raise NotFoundError("Avatar not found", details={"avatarId": avatar_id}) from None


def list_avatars(user_id: str, project_id: str, *, limit: int, start_key: dict | None,
                 filters: AvatarFilters = AvatarFilters()) -> tuple[list[AvatarModel], dict | None]:
    """One project's avatars, newest first: Query GSI1 (U#uid#P#pid, begins_with A#), ≤3 round trips."""
    condition = None
    for value, attr in ((filters.source_type, AvatarModel.source_type), (filters.status, AvatarModel.status),
                        (filters.gender, AvatarModel.attributes.gender), (filters.style, AvatarModel.attributes.style)):
        if value:
            clause = attr == value
            condition = clause if condition is None else condition & clause
    if filters.search:
        clause = AvatarModel.name_lower.contains(filters.search.strip().lower())
        condition = clause if condition is None else condition & clause
    return fill_page(AvatarModel, project_items_pk(user_id, project_id), limit=limit, start_key=start_key,
                     range_key_condition=AvatarModel.gsi1sk.startswith("A#"),
                     filter_condition=condition, index=AvatarModel.by_project)


# ---- writes -----------------------------------------------------------------------------------

def new_avatar(*, user_id: str, project_id: str, avatar_id: str, name: str, source_type: str, status: str,
               fields: dict, **extra: Any) -> AvatarModel:
    now = clock.now_iso()
    return AvatarModel(
        avatar_pk(user_id, avatar_id), META,
        gsi1pk=project_items_pk(user_id, project_id), gsi1sk=f"A#{avatar_id}",
        id=avatar_id, user_id=user_id, project_id=project_id, name=name, name_lower=name.lower(),
        source_type=source_type, status=status, persona=persona_from_fields(fields),
        attributes=attributes_from_fields(fields), usage_count=0, created_at=now, updated_at=now, **extra,
    )


def update_avatar(user_id: str, avatar_id: str, changes: dict) -> AvatarModel:
    """Partial edit of name, persona, attributes and crop (a field set to null clears it).

    A crop change is only recorded here (chalicelib.crops); the caller asks the worker for the thumbnail."""
    avatar = get_avatar(user_id, avatar_id, consistent="crop" in changes)
    actions = [AvatarModel.updated_at.set(clock.now_iso())]
    condition = AvatarModel.pk.exists()
    if "crop" in changes:
        crop_changes, crop_condition = crop_actions(avatar, changes["crop"])
        actions += crop_changes
        if crop_condition is not None:
            condition &= crop_condition
    if "name" in changes and changes["name"] is not None:
        actions += [AvatarModel.name.set(changes["name"]), AvatarModel.name_lower.set(changes["name"].lower())]
    if any(k in changes for k in PERSONA_FIELDS):
        merged = {**persona_fields(avatar), **{k: changes[k] for k in PERSONA_FIELDS if k in changes}}
        persona = persona_from_fields(merged)
        actions.append(AvatarModel.persona.set(persona) if persona else AvatarModel.persona.remove())
    if any(k in changes for k in ATTRIBUTE_FIELDS):
        merged = {**attribute_fields(avatar), **{k: changes[k] for k in ATTRIBUTE_FIELDS if k in changes}}
        attrs = attributes_from_fields(merged)
        actions.append(AvatarModel.attributes.set(attrs) if attrs else AvatarModel.attributes.remove())
    from pynamodb.exceptions import UpdateError
    from chalicelib.db import condition_failed
    try:
        avatar.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFoundError("Avatar not found", details={"avatarId": avatar_id}) from None
        raise
    return avatar


def mark_ready(connection: Any, avatar: AvatarModel, *, image_key: str, thumbnail_key: str, width: int,
               height: int, fmt: str, size_bytes: int, from_statuses: tuple[str, ...],
               display_key: str | None = None) -> bool:
    """The one transition to `ready`: updates the avatar and the counters in one transaction.

    Returns False (and changes nothing) when the avatar is no longer in one of `from_statuses`
    (a duplicate event) or its project is gone (deleted meanwhile).
    """
    now = clock.now()
    try:
        with TransactWrite(connection=connection) as tx:
            tx.update(avatar, actions=[
                AvatarModel.status.set("ready"), AvatarModel.status_reason.remove(),
                AvatarModel.image_key.set(image_key), AvatarModel.thumbnail_key.set(thumbnail_key),
                AvatarModel.width.set(width), AvatarModel.height.set(height), AvatarModel.format.set(fmt),
                AvatarModel.size_bytes.set(size_bytes), AvatarModel.ttl.remove(),
                AvatarModel.updated_at.set(clock.iso(now)),
                *([AvatarModel.display_key.set(display_key)] if display_key else []),
            ], condition=AvatarModel.status.is_in(*from_statuses))
            count_new_avatar(tx, avatar, now)
    except TransactWriteError as exc:
        if transaction_condition_failed(exc):
            return False
        raise
    return True


def count_new_avatar(tx: TransactWrite, avatar: AvatarModel, now: Any, stats_actions: tuple = ()) -> None:
    """The counter writes of an avatar becoming ready, for the caller's transaction: the project's
    avatarCount (which also checks the project still exists) and the user's totals."""
    counter = getattr(UserStatsModel, SOURCE_COUNTER[avatar.source_type])
    tx.update(ProjectModel(user_pk(avatar.user_id), project_sk(avatar.project_id)),
              actions=[ProjectModel.avatar_count.add(1)], condition=ProjectModel.pk.exists())
    tx.update(UserStatsModel(user_pk(avatar.user_id)),
              actions=[UserStatsModel.total_avatars.add(1), counter.add(1), *stats_actions])
    if avatar.source_type == "uploaded":
        tx.update(UserDayModel(user_pk(avatar.user_id), clock.day_key(now)),
                  actions=[UserDayModel.uploads.add(1), UserDayModel.ttl.set(clock.epoch(now) + 40 * 86400)])


def _delete_history(user_id: str, avatar_id: str) -> None:
    """Usage history and per-app summaries live in the avatar's partition; remove all but META."""
    pk = avatar_pk(user_id, avatar_id)
    from chalicelib.models import UsageRecordModel

    with UsageRecordModel.batch_write() as batch:
        for item in iterate_all(lambda key: UsageRecordModel.query(pk, last_evaluated_key=key, page_size=100,
                                                                   attributes_to_get=["PK", "SK"])):
            if item.sk != META:
                batch.delete(item)


def delete_avatar(connection: Any, storage: Any, avatar: AvatarModel, *, project_exists: bool = True) -> bool:
    """Remove files, history and the avatar; counters drop only for a `ready` avatar.

    Files and history go first and the avatar item last, so a crash midway leaves the item
    to find and the job to repeat. Returns False when the avatar was already gone.
    """
    storage.delete([avatar.upload_key, avatar.image_key, avatar.thumbnail_key, avatar.display_key])
    _delete_history(avatar.user_id, avatar.id)
    try:
        with TransactWrite(connection=connection) as tx:
            if avatar.status == "ready":
                tx.delete(avatar, condition=AvatarModel.status == "ready")
                if project_exists:
                    tx.update(ProjectModel(user_pk(avatar.user_id), project_sk(avatar.project_id)),
                              actions=[ProjectModel.avatar_count.add(-1)], condition=ProjectModel.pk.exists())
                counter = getattr(UserStatsModel, SOURCE_COUNTER[avatar.source_type])
                tx.update(UserStatsModel(user_pk(avatar.user_id)), actions=[
                    UserStatsModel.total_avatars.add(-1), counter.add(-1),
                    UserStatsModel.total_usage.add(-int(avatar.usage_count or 0)),
                ])
            else:
                tx.delete(avatar, condition=AvatarModel.pk.exists() & (AvatarModel.status != "ready"))
    except TransactWriteError as exc:
        if transaction_condition_failed(exc):
            # Gone already, or it became ready (or its usage changed) meanwhile: re-read and retry once.
            try:
                fresh = AvatarModel.get(avatar.pk, META, consistent_read=True)
            except DoesNotExist:
                return False
            if (fresh.status, fresh.usage_count) == (avatar.status, avatar.usage_count):
                raise ConflictError("Avatar changed while deleting; try again") from exc
            return delete_avatar(connection, storage, fresh, project_exists=project_exists)
        raise
    return True
