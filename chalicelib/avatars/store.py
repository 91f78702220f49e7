"""The avatars' data access: every read and write of an avatar's items, by name.

    U#{uid}#A#{aid} / META        the avatar       GSI1 U#{uid}#P#{pid} / A#{aid} (its project's page)
                                                   GSI3 SWEEP#n / {deadline}#{PK} while uploading or deleting
    U#{uid}#A#{aid} / APP#{app}   its usage by app (written by usage; read and removed here)
    U#{uid}#A#{aid} / V#{n:08d}   its versions (issue 29, chalicelib.avatars.versions; removed with the rest)
                                  a derived avatar is also in GSI2 U#{uid}#A#{sourceId}#D / A#{aid}
    U#{uid}#A#{aid}[#H#n] / USE#… its usage history (written by usage; removed here)
    U#{uid}#A#{aid}#D / {day}#{app}  its daily uses by app (written by usage; removed here)
    FILE#{key} / INTENT           a derived file about to be written   GSI3 FILES#n / {check at}#{PK}

The rules (chalicelib.avatars.service, uploads, crops, file_intents) decide what changes and why;
these operations say how, with the conditions that keep a change from landing twice or on an avatar
that moved on. A write refused by its condition answers False (or None for a read that found
nothing); operations that take a `Transaction` add one named item and leave the outcome to the
caller, which reads `TransactionCancelled.reasons` by that name.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from pynamodb.exceptions import DeleteError, DoesNotExist

from chalicelib.aws.db import condition_failed, fill_page, iterate_all, query_page, update_if
from chalicelib.aws.models import (
    FILE_INTENT_SHARDS,
    META,
    AppUsageSummaryModel,
    AttributesMap,
    AvatarModel,
    AvatarVersionModel,
    CropMap,
    FileIntentModel,
    PersonaMap,
    UsageRecordModel,
    avatar_days_pk,
    avatar_pk,
    derivatives_pk,
    file_intent_pk,
    file_intent_shard,
    history_pks,
    project_items_pk,
    sweep_pk,
    sweep_sk,
    version_sk,
)

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction

UNCHANGED: Any = object()  # an edit leaves this field as it is


# ---- items ------------------------------------------------------------------------------------

def new_item(*, user_id: str, project_id: str, avatar_id: str, name: str, source_type: str, status: str,
             persona: PersonaMap | None, attributes: AttributesMap | None, now: str, deadline: str | None = None,
             **extra: Any) -> AvatarModel:
    """An avatar not yet written: its keys (the project's page on GSI1; the sweep index by `deadline`
    when given; its source's derivatives on GSI2 when it was made from one), the name's lower-case copy
    for search, no uses yet."""
    pk = avatar_pk(user_id, avatar_id)
    if deadline is not None:
        extra.update(sweep_pk=sweep_pk(pk), sweep_sk=sweep_sk(deadline, pk))
    if extra.get("source_avatar_id"):
        extra.update(gsi2pk=derivatives_pk(user_id, extra["source_avatar_id"]), gsi2sk=f"A#{avatar_id}")
    return AvatarModel(
        pk, META, gsi1pk=project_items_pk(user_id, project_id), gsi1sk=f"A#{avatar_id}",
        id=avatar_id, user_id=user_id, project_id=project_id, name=name, name_lower=name.lower(),
        source_type=source_type, status=status, persona=persona, attributes=attributes, usage_count=0,
        created_at=now, updated_at=now, **extra,
    )


# ---- reads ------------------------------------------------------------------------------------

def get(user_id: str, avatar_id: str, *, consistent: bool = False) -> AvatarModel | None:
    """GetItem U#{uid}#A#{aid} / META; None when there is none."""
    return _get(avatar_pk(user_id, avatar_id), consistent)


def reread(avatar: AvatarModel) -> AvatarModel | None:
    """The avatar as it is now (consistent GetItem); None once it is gone."""
    return _get(avatar.pk, True)


def _get(pk: str, consistent: bool) -> AvatarModel | None:
    try:
        return AvatarModel.get(pk, META, consistent_read=consistent)
    except DoesNotExist:
        return None


def page_of_project(user_id: str, project_id: str, *, limit: int, start_key: dict | None,
                    source_type: str | None = None, status: str | None = None, genders: tuple[str, ...] = (),
                    styles: tuple[str, ...] = (), name_contains: str | None = None,
                    attributes: tuple[tuple[str, str], ...] = ()) -> tuple[list[AvatarModel], dict | None]:
    """A project's avatars, newest first, never one being deleted: Query GSI1 U#{uid}#P#{pid}, SK
    begins_with A#, with a FilterExpression (any of `genders` / `styles`, the lower-case name
    containing `name_contains`, each (attribute, value) of `attributes` — the model's attribute names),
    at most 3 round trips to fill a page."""
    condition = AvatarModel.status != "deleting"
    for value, attr in ((source_type, AvatarModel.source_type), (status, AvatarModel.status)):
        if value:
            condition = condition & (attr == value)
    for values, attr in ((genders, AvatarModel.attributes.gender), (styles, AvatarModel.attributes.style)):
        if values:
            condition = condition & attr.is_in(*values)
    for name, value in attributes:
        condition = condition & (getattr(AvatarModel.attributes, name) == value)
    if name_contains is not None:
        condition = condition & AvatarModel.name_lower.contains(name_contains)
    return fill_page(AvatarModel, project_items_pk(user_id, project_id), limit=limit, start_key=start_key,
                     range_key_condition=AvatarModel.gsi1sk.startswith("A#"),
                     filter_condition=condition, index=AvatarModel.by_project)


def oldest_of_project(user_id: str, project_id: str, *, limit: int) -> tuple[list[AvatarModel], dict | None]:
    """Up to `limit` of a project's avatars in any status, oldest first: one Query on GSI1 (a purge's batch)."""
    return query_page(AvatarModel, project_items_pk(user_id, project_id), limit=limit, index=AvatarModel.by_project,
                      range_key_condition=AvatarModel.gsi1sk.startswith("A#"), newest_first=False)


def files_and_status(owners: list[tuple[str, str]]) -> Iterator[AvatarModel]:
    """The avatars among `owners` ((user id, avatar id) pairs) that exist, with only their file keys and
    status: one BatchGetItem per 100."""
    pks = sorted({avatar_pk(*owner) for owner in owners})
    for start in range(0, len(pks), 100):
        yield from AvatarModel.batch_get([(pk, META) for pk in pks[start:start + 100]],
                                         attributes_to_get=["PK", "SK", "imageKey", "thumbnailKey", "displayKey",
                                                            "status"])


def app_counts(avatar: AvatarModel) -> dict[str, int]:
    """The avatar's non-zero uses by app: Query its partition, SK begins_with APP# (consistent)."""
    counts = {}
    for item in iterate_all(lambda key: AppUsageSummaryModel.query(
            avatar.pk, AppUsageSummaryModel.sk.startswith("APP#"), consistent_read=True, last_evaluated_key=key,
            page_size=100)):
        if int(item.count or 0):
            counts[item.app_id] = int(item.count)
    return counts


# ---- writes -----------------------------------------------------------------------------------

def add_new(tx: "Transaction", avatar: AvatarModel, *, name: str = "avatar") -> None:
    """Put the avatar, condition: no item has its key (a retry cannot write it twice)."""
    tx.save(name, avatar, condition=AvatarModel.pk.does_not_exist())


def add_ready(tx: "Transaction", avatar: AvatarModel, *, image_key: str, thumbnail_key: str, width: int,
              height: int, fmt: str, size_bytes: int, display_key: str | None, from_statuses: tuple[str, ...],
              now: str, name: str = "avatar") -> None:
    """Update the avatar to `ready` with its files and image facts, out of the sweep index and without
    a TTL; condition: its status is one of `from_statuses`."""
    tx.update(name, avatar, actions=[
        AvatarModel.status.set("ready"), AvatarModel.status_reason.remove(), AvatarModel.status_code.remove(),
        AvatarModel.image_key.set(image_key), AvatarModel.thumbnail_key.set(thumbnail_key),
        AvatarModel.width.set(width), AvatarModel.height.set(height), AvatarModel.format.set(fmt),
        AvatarModel.size_bytes.set(size_bytes), AvatarModel.ttl.remove(),
        AvatarModel.sweep_pk.remove(), AvatarModel.sweep_sk.remove(),
        AvatarModel.updated_at.set(now),
        *([AvatarModel.display_key.set(display_key)] if display_key else []),
    ], condition=AvatarModel.status.is_in(*from_statuses))


def _at_version(number: int) -> Any:
    """The avatar is at version `number` (0: never versioned), so its versioned fields are as read."""
    return (AvatarModel.version_count == number) if number else (
        AvatarModel.version_count.does_not_exist() | (AvatarModel.version_count == 0))


def edit(tx: "Transaction", avatar: AvatarModel, *, now: str, version: int, name: Any = UNCHANGED,
         persona: Any = UNCHANGED, attributes: Any = UNCHANGED, crop: Any = UNCHANGED,
         op: str = "avatar") -> None:
    """Transaction item `op`: UpdateItem of the fields given (None removes persona, attributes or crop;
    a crop also bumps cropVersion and needs the avatar `ready`) and versionCount = `version`;
    condition: it exists, is not being deleted and is still at version `version - 1` (nothing changed
    those fields since it was read, and no other change takes this number)."""
    actions = [AvatarModel.updated_at.set(now), AvatarModel.version_count.set(version)]
    condition = AvatarModel.pk.exists() & (AvatarModel.status != "deleting") & _at_version(version - 1)
    if crop is not UNCHANGED:
        actions += [AvatarModel.crop.set(CropMap(**crop)) if crop is not None else AvatarModel.crop.remove(),
                    AvatarModel.crop_version.add(1)]
        condition &= AvatarModel.status == "ready"
    if name is not UNCHANGED:
        actions += [AvatarModel.name.set(name), AvatarModel.name_lower.set(name.lower())]
    for value, attr in ((persona, AvatarModel.persona), (attributes, AvatarModel.attributes)):
        if value is not UNCHANGED:
            actions.append(attr.set(value) if value is not None else attr.remove())
    tx.update(op, avatar, actions=actions, condition=condition)


def set_thumbnail(avatar: AvatarModel, key: str, *, crop_version: int, previous: str | None) -> bool:
    """Point the avatar at the thumbnail `key` made for `crop_version`; condition: still `ready`, at that
    crop version (0: none yet) and still on the `previous` thumbnail. False when any moved on."""
    version_now = (AvatarModel.crop_version == crop_version if crop_version else
                   AvatarModel.crop_version.does_not_exist())
    return update_if(avatar, [AvatarModel.thumbnail_key.set(key)],
                   version_now & (AvatarModel.thumbnail_key == previous) & (AvatarModel.status == "ready"))


def reject(avatar: AvatarModel, code: str, reason: str, *, now: str) -> bool:
    """uploading → rejected with `code` and `reason`, out of the sweep index and without a TTL;
    condition: still `uploading` with the same upload key. False otherwise (or gone)."""
    return update_if(avatar, [
        AvatarModel.status.set("rejected"), AvatarModel.status_reason.set(reason),
        AvatarModel.status_code.set(code), AvatarModel.ttl.remove(), AvatarModel.sweep_pk.remove(),
        AvatarModel.sweep_sk.remove(), AvatarModel.updated_at.set(now),
    ], (AvatarModel.status == "uploading") & (AvatarModel.upload_key == avatar.upload_key))


def retire(tx: "Transaction", avatar: AvatarModel, *, now: str, deadline: str, name: str = "avatar") -> None:
    """Update the avatar to `deleting`, into the sweep index by `deadline`; condition: the status it was
    read with and, when `ready`, the usage count it was read with (so the counters it leaves lose
    exactly what it had)."""
    usage = int(avatar.usage_count or 0)
    condition = AvatarModel.status == avatar.status
    if avatar.status == "ready":
        condition = condition & ((AvatarModel.usage_count == usage) if usage else
                                 (AvatarModel.usage_count.does_not_exist() | (AvatarModel.usage_count == 0)))
    tx.update(name, avatar, actions=[
        AvatarModel.status.set("deleting"), AvatarModel.updated_at.set(now),
        AvatarModel.sweep_pk.set(sweep_pk(avatar.pk)), AvatarModel.sweep_sk.set(sweep_sk(deadline, avatar.pk)),
    ], condition=condition)


def delete_history(user_id: str, avatar_id: str) -> None:
    """Every item of the avatar's partitions but META: per-app summaries, versions and history rows
    from before issue 32 in its own, newer history rows in its shards (models.history_pks), its daily
    counters (models.avatar_days_pk, issue 29). Query each partition's keys, then BatchWriteItem."""
    with UsageRecordModel.batch_write() as batch:
        for pk in [*history_pks(user_id, avatar_id), avatar_days_pk(user_id, avatar_id)]:
            for item in iterate_all(lambda key, pk=pk: UsageRecordModel.query(
                    pk, last_evaluated_key=key, page_size=100, attributes_to_get=["PK", "SK"])):
                if item.sk != META:
                    batch.delete(item)


def delete_retired(avatar: AvatarModel) -> bool:
    """DeleteItem, condition: `deleting`. False when it is not (or is gone)."""
    try:
        avatar.delete(condition=AvatarModel.status == "deleting")
    except DeleteError as exc:
        if condition_failed(exc):
            return False
        raise
    return True



# ---- file intents -----------------------------------------------------------------------------

def add_file_intents(keys: list[str], *, check_at: str, ttl: int) -> None:
    """Put one intent per file key (FILE#{key}, on its GSI3 FILES# shard sorted by `check_at`): one
    BatchWriteItem of ≤ 25."""
    with FileIntentModel.batch_write() as batch:
        for key in keys:
            pk = file_intent_pk(key)
            batch.save(FileIntentModel(pk, key=key, sweep_pk=file_intent_shard(key), sweep_sk=f"{check_at}#{pk}",
                                       ttl=ttl))


def due_file_intents(now: str, *, limit: int) -> list[str]:
    """File keys whose intent's check moment is at or before `now`: one Query per FILES# shard of GSI3,
    up to `limit` each, oldest first."""
    bound = now + "~"  # "{check at}#{pk}" sorts below this for every moment ≤ now
    keys = []
    for shard in range(FILE_INTENT_SHARDS):
        for item in FileIntentModel.by_deadline.query(f"FILES#{shard}", FileIntentModel.sweep_sk < bound,
                                                      limit=limit):
            keys.append(item.pk.removeprefix("FILE#"))
    return keys


def delete_file_intents(keys: list[str]) -> None:
    """Delete the intents of these file keys: BatchWriteItem."""
    with FileIntentModel.batch_write() as batch:
        for key in keys:
            batch.delete(FileIntentModel(file_intent_pk(key)))


# ---- attribute suggestions (chalicelib/avatars/suggestions.py) --------------------------------

def finish_suggestions(avatar: AvatarModel, status: str, found: dict | None) -> bool:
    """UpdateItem: the model's answer (`suggestions`, `suggestionStatus`), only while the avatar is ready
    and its suggestions still pending; False when that was no longer so (a redelivery, a delete)."""
    actions = [AvatarModel.suggestion_status.set(status),
               AvatarModel.suggestions.set(found) if found else AvatarModel.suggestions.remove()]
    return update_if(avatar, actions, (AvatarModel.suggestion_status == "pending") & (AvatarModel.status == "ready"))


def answer_suggestions_versioned(tx: "Transaction", avatar: AvatarModel, remaining: dict, attributes: Any, *,
                                now: str, version: int, op: str = "avatar") -> None:
    """Transaction item `op`: as answer_suggestions, for an answer that changes the attributes: they and
    versionCount = `version`, conditional on `updatedAt` as read, `ready` and version `version - 1`."""
    actions = [AvatarModel.suggestions.set(remaining) if remaining else AvatarModel.suggestions.remove(),
               AvatarModel.updated_at.set(now), AvatarModel.version_count.set(version),
               AvatarModel.attributes.set(attributes) if attributes else AvatarModel.attributes.remove()]
    tx.update(op, avatar, actions=actions, condition=(AvatarModel.updated_at == avatar.updated_at)
              & (AvatarModel.status == "ready") & _at_version(version - 1))


def answer_suggestions(avatar: AvatarModel, remaining: dict, attributes: Any, *, now: str) -> bool:
    """UpdateItem: the suggestions left after the user's answer, and (unless `attributes` is ...) the
    attributes it made, conditional on the item being as it was read (`updatedAt`) and ready; False when
    it changed meanwhile (the caller reads again)."""
    actions = [AvatarModel.suggestions.set(remaining) if remaining else AvatarModel.suggestions.remove(),
               AvatarModel.updated_at.set(now)]
    if attributes is not ...:
        actions.append(AvatarModel.attributes.set(attributes) if attributes else AvatarModel.attributes.remove())
    return update_if(avatar, actions, (AvatarModel.updated_at == avatar.updated_at) & (AvatarModel.status == "ready"))


# ---- used by generation / usage / events

def add_generated(tx: "Transaction", avatar: AvatarModel, *, name: str = "avatar") -> None:
    """Transaction item `name`: Put a new avatar (condition: it does not exist — its id derives from the
    job and the image, so a second run's copy of the same image is refused)."""
    tx.save(name, avatar, condition=AvatarModel.pk.does_not_exist())


def read_many(user_id: str, avatar_ids: list[str]) -> dict[str, AvatarModel]:
    """The user's avatars with these ids that exist, by id: one BatchGetItem (≤ 100 keys)."""
    return {a.id: a for a in AvatarModel.batch_get([(avatar_pk(user_id, i), META) for i in avatar_ids])}


def _not_newer(attr: Any, moment: str) -> Any:
    """`lastUsedAt` only moves forward: canonical UTC timestamps compare correctly as strings."""
    return attr.does_not_exist() | (attr <= moment)


def count_uses(tx: "Transaction", name: str, user_id: str, avatar_id: str, *, uses: int,
               last_used_at: str | None = None) -> None:
    """Transaction item `name`: ADD usageCount `uses` (condition: the avatar exists and is `ready` —
    its key holds the user id, so this is also the ownership check); with `last_used_at`, SET lastUsedAt
    too, conditional on the stored one not being newer."""
    actions = [AvatarModel.usage_count.add(uses)]
    condition = AvatarModel.pk.exists() & (AvatarModel.status == "ready")
    if last_used_at is not None:
        actions.append(AvatarModel.last_used_at.set(last_used_at))
        condition = condition & _not_newer(AvatarModel.last_used_at, last_used_at)
    tx.update(name, AvatarModel(avatar_pk(user_id, avatar_id), META), actions=actions, condition=condition)


def from_stream_image(image: dict) -> AvatarModel:
    """An avatar item as a stream record's image carries it (no call)."""
    return AvatarModel.from_raw_data(image)


# ---- versions and lineage (issue 29, chalicelib/avatars/versions.py) ---------------------------

def new_version(user_id: str, avatar_id: str, number: int, **fields: Any) -> AvatarVersionModel:
    """A version item not yet written (U#{uid}#A#{aid} / V#{n:08d})."""
    return AvatarVersionModel(avatar_pk(user_id, avatar_id), version_sk(number), avatar_id=avatar_id, number=number,
                              **fields)


def add_version(tx: "Transaction", version: AvatarVersionModel, *, op: str = "version") -> None:
    """Transaction item `op`: Put the version, condition: no item has its key (a number is used once)."""
    tx.save(op, version, condition=AvatarVersionModel.pk.does_not_exist())


def drop_version(tx: "Transaction", user_id: str, avatar_id: str, number: int, *, op: str = "trim") -> None:
    """Transaction item `op`: Delete version `number` (gone already: nothing to do, no condition)."""
    tx.delete(op, AvatarVersionModel(avatar_pk(user_id, avatar_id), version_sk(number)))


def versions_page(user_id: str, avatar_id: str, *, limit: int,
                  start_key: dict | None) -> tuple[list[AvatarVersionModel], dict | None]:
    """An avatar's versions, newest first: one Query U#{uid}#A#{aid}, SK begins_with V#, descending, Limit."""
    return query_page(AvatarVersionModel, avatar_pk(user_id, avatar_id), limit=limit, start_key=start_key,
                      range_key_condition=AvatarVersionModel.sk.startswith("V#"), newest_first=True)


def get_version(user_id: str, avatar_id: str, number: int) -> AvatarVersionModel | None:
    """GetItem U#{uid}#A#{aid} / V#{n:08d} (consistent); None when there is none (never made, or trimmed)."""
    try:
        return AvatarVersionModel.get(avatar_pk(user_id, avatar_id), version_sk(number), consistent_read=True)
    except DoesNotExist:
        return None


def derivatives_page(user_id: str, avatar_id: str, *, limit: int) -> tuple[list[AvatarModel], bool]:
    """The newest avatars made from this one (restyles, variations), none being deleted: one Query on
    GSI2 U#{uid}#A#{aid}#D, descending, Limit `limit` + 1. The avatars, and whether there are more."""
    items, _ = query_page(AvatarModel, derivatives_pk(user_id, avatar_id), limit=limit + 1, index=AvatarModel.by_source,
                          range_key_condition=AvatarModel.gsi2sk.startswith("A#"),
                          filter_condition=AvatarModel.status != "deleting")
    return items[:limit], len(items) > limit


def join_source_lineage(avatar: AvatarModel) -> bool:
    """UpdateItem: put an avatar made before lineage keys existed into its source's derivatives (GSI2);
    condition: it names a source and is not in GSI2 yet. False when it already is (or is gone)."""
    return update_if(avatar, [AvatarModel.gsi2pk.set(derivatives_pk(avatar.user_id, avatar.source_avatar_id)),
                              AvatarModel.gsi2sk.set(f"A#{avatar.id}")],
                     AvatarModel.pk.exists() & AvatarModel.source_avatar_id.exists() & AvatarModel.gsi2pk.does_not_exist())
