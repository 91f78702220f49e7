"""Avatars: reading, listing with filters, editing, deleting, and the transition to `ready`
that every source (upload, generation, preset) goes through so counters stay exact."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datetime import timedelta

from pynamodb.exceptions import DeleteError, DoesNotExist

from chalicelib import clock, ids

from chalicelib.avatars import vocabulary
from chalicelib.avatars.crops import crop_actions, crop_json
from chalicelib.aws.db import Transaction, TransactionCancelled, condition_failed, fill_page, iterate_all
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.aws.models import (
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
    sweep_pk,
    sweep_sk,
    user_pk,
)

# A restyle (image_to_image) is a generated avatar: counted with text_to_image.
SOURCE_COUNTER = {"uploaded": "avatars_uploaded", "text_to_image": "avatars_generated", "preset": "avatars_preset",
                  "image_to_image": "avatars_generated"}
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
        "usageCount": int(avatar.usage_count or 0),
        "lastUsedAt": avatar.last_used_at,
        "createdAt": avatar.created_at,
        "updatedAt": avatar.updated_at,
    }


# ---- reads ------------------------------------------------------------------------------------

def get_avatar(user_id: str, avatar_id: str, *, consistent: bool = False) -> AvatarModel:
    try:
        avatar = AvatarModel.get(avatar_pk(user_id, avatar_id), META, consistent_read=consistent)
    except DoesNotExist:
        avatar = None
    if avatar is None or avatar.status == "deleting":  # a delete in progress is already gone for the user
        raise NotFoundError("Avatar not found", details={"avatarId": avatar_id})
    return avatar


def list_avatars(user_id: str, project_id: str, *, limit: int, start_key: dict | None,
                 filters: AvatarFilters = AvatarFilters()) -> tuple[list[AvatarModel], dict | None]:
    """One project's avatars, newest first: Query GSI1 (U#uid#P#pid, begins_with A#), ≤3 round trips."""
    condition = AvatarModel.status != "deleting"
    for value, attr in ((filters.source_type, AvatarModel.source_type), (filters.status, AvatarModel.status)):
        if value:
            condition = condition & (attr == value)
    # Old items keep the spelling they were stored with: a filter matches every spelling of its value.
    for key, value, attr in (("gender", filters.gender, AvatarModel.attributes.gender),
                             ("style", filters.style, AvatarModel.attributes.style)):
        if value:
            condition = condition & attr.is_in(*vocabulary.spellings(key, value))
    if filters.search:
        condition = condition & AvatarModel.name_lower.contains(filters.search.strip().lower())
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

    A crop change is only recorded here (chalicelib.avatars.crops); the caller asks the worker for the thumbnail."""
    avatar = get_avatar(user_id, avatar_id, consistent="crop" in changes)
    actions = [AvatarModel.updated_at.set(clock.now_iso())]
    condition = AvatarModel.pk.exists() & (AvatarModel.status != "deleting")
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
    (a duplicate event, a delete) or its project is gone (deleted meanwhile).
    """
    now = clock.now()
    try:
        with Transaction(connection) as tx:
            tx.update("avatar", avatar, actions=[
                AvatarModel.status.set("ready"), AvatarModel.status_reason.remove(), AvatarModel.status_code.remove(),
                AvatarModel.image_key.set(image_key), AvatarModel.thumbnail_key.set(thumbnail_key),
                AvatarModel.width.set(width), AvatarModel.height.set(height), AvatarModel.format.set(fmt),
                AvatarModel.size_bytes.set(size_bytes), AvatarModel.ttl.remove(),
                AvatarModel.sweep_pk.remove(), AvatarModel.sweep_sk.remove(),
                AvatarModel.updated_at.set(clock.iso(now)),
                *([AvatarModel.display_key.set(display_key)] if display_key else []),
            ], condition=AvatarModel.status.is_in(*from_statuses))
            count_new_avatar(tx, avatar, now)
    except TransactionCancelled as cancelled:
        if cancelled.conditions_failed:
            return False
        raise
    return True


def count_new_avatar(tx: Transaction, avatar: AvatarModel, now: Any, stats_actions: tuple = (),
                     count: int = 1) -> None:
    """The counter writes of an avatar becoming ready, for the caller's transaction: the project's
    avatarCount (operation "project", which also checks the project still exists) and the user's
    totals ("stats", and "day" for uploads). `count`: that many avatars like it (a job's images)."""
    counter = getattr(UserStatsModel, SOURCE_COUNTER[avatar.source_type])
    tx.update("project", ProjectModel(user_pk(avatar.user_id), project_sk(avatar.project_id)),
              actions=[ProjectModel.avatar_count.add(count)], condition=ProjectModel.pk.exists())
    tx.update("stats", UserStatsModel(user_pk(avatar.user_id)),
              actions=[UserStatsModel.total_avatars.add(count), counter.add(count), *stats_actions])
    if avatar.source_type == "uploaded":
        tx.update("day", UserDayModel(user_pk(avatar.user_id), clock.day_key(now)),
                  actions=[UserDayModel.uploads.add(count), UserDayModel.ttl.set(clock.epoch(now) + 40 * 86400)])


def _delete_history(user_id: str, avatar_id: str) -> None:
    """Per-app summaries (and history rows from before issue 32) live in the avatar's partition, newer
    history rows in its shards (models.history_pks): remove all of them but META."""
    from chalicelib.aws.models import UsageRecordModel, history_pks

    with UsageRecordModel.batch_write() as batch:
        for pk in history_pks(user_id, avatar_id):
            for item in iterate_all(lambda key, pk=pk: UsageRecordModel.query(
                    pk, last_evaluated_key=key, page_size=100, attributes_to_get=["PK", "SK"])):
                if item.sk != META:
                    batch.delete(item)


# An avatar being deleted that is still there after this long is finished by the sweeper.
DELETE_GRACE_SECONDS = 300
# TransactWriteItems takes 100 items: the avatar, project and stats, and per-app totals up to this many.
_APP_TOTALS_IN_TRANSACTION = 90


def files_of(avatar: AvatarModel) -> list[str]:
    """Every S3 object an avatar item points at."""
    return [k for k in (avatar.upload_key, avatar.image_key, avatar.thumbnail_key, avatar.display_key) if k]


def _app_counts(avatar: AvatarModel) -> dict[str, int]:
    from chalicelib.aws.models import AppUsageSummaryModel

    counts = {}
    for item in iterate_all(lambda key: AppUsageSummaryModel.query(
            avatar.pk, AppUsageSummaryModel.sk.startswith("APP#"), consistent_read=True, last_evaluated_key=key,
            page_size=100)):
        if int(item.count or 0):
            counts[item.app_id] = int(item.count)
    return counts


def _retire(connection: Any, avatar: AvatarModel, *, project_exists: bool) -> None:
    """Step 1 of a delete: the avatar turns `deleting` and leaves every counter in one transaction,
    conditional on the status and usage count it was read with. From then on no usage event can land
    on it (they require `ready`), so what the counters lose is exactly what it had."""
    from chalicelib.aws.models import AppUsageSummaryModel

    now = clock.now()
    deadline = clock.iso(now + timedelta(seconds=DELETE_GRACE_SECONDS))
    usage = int(avatar.usage_count or 0)
    condition = AvatarModel.status == avatar.status
    if avatar.status == "ready":
        condition = condition & ((AvatarModel.usage_count == usage) if usage else
                                 (AvatarModel.usage_count.does_not_exist() | (AvatarModel.usage_count == 0)))
    counts = _app_counts(avatar) if avatar.status == "ready" and usage else {}
    apps = sorted(counts.items())
    with Transaction(connection) as tx:
        tx.update("avatar", avatar, actions=[
            AvatarModel.status.set("deleting"), AvatarModel.updated_at.set(clock.iso(now)),
            AvatarModel.sweep_pk.set(sweep_pk(avatar.pk)), AvatarModel.sweep_sk.set(sweep_sk(deadline, avatar.pk)),
        ], condition=condition)
        if avatar.status == "ready":
            if project_exists:
                tx.update("project", ProjectModel(user_pk(avatar.user_id), project_sk(avatar.project_id)),
                          actions=[ProjectModel.avatar_count.add(-1)], condition=ProjectModel.pk.exists())
            counter = getattr(UserStatsModel, SOURCE_COUNTER[avatar.source_type])
            tx.update("stats", UserStatsModel(user_pk(avatar.user_id)), actions=[
                UserStatsModel.total_avatars.add(-1), counter.add(-1), UserStatsModel.total_usage.add(-usage)])
            for app_id, count in apps[:_APP_TOTALS_IN_TRANSACTION]:
                tx.update(f"app:{app_id}", AppUsageSummaryModel(user_pk(avatar.user_id), f"APPUSE#{app_id}"),
                          actions=[AppUsageSummaryModel.count.add(-count)])
    for app_id, count in apps[_APP_TOTALS_IN_TRANSACTION:]:  # a rare avatar used by over 90 apps
        AppUsageSummaryModel(user_pk(avatar.user_id), f"APPUSE#{app_id}").update(
            actions=[AppUsageSummaryModel.count.add(-count)])


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
        try:  # it changed meanwhile (a usage event, an upload finishing) or is gone: read it again
            avatar = AvatarModel.get(avatar.pk, META, consistent_read=True)
        except DoesNotExist:
            return False
    else:
        raise ConflictError("Avatar changed while deleting; try again")
    from chalicelib.sharing import service as sharing

    sharing.remove_for_avatar(avatar.user_id, avatar.id)  # its share links (their pages answer 410)
    _delete_history(avatar.user_id, avatar.id)
    storage.delete(files_of(avatar))
    try:
        avatar.delete(condition=AvatarModel.status == "deleting")
    except DeleteError as exc:
        if condition_failed(exc):
            return False
        raise
    return True
