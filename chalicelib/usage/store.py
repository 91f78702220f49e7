"""Usage's data access, by name: the event markers (`U#{uid}#EVT#{app}#{eid}` / EVT), the history rows
(`U#{uid}#A#{aid}#H#{n}` / `USE#…`, and the avatar's own partition for rows from before issue 32),
an avatar's per-app summaries (`U#{uid}#A#{aid}` / `APP#{app}`), an avatar's daily counters per app
(`U#{uid}#A#{aid}#D` / `{yyyy-mm-dd}#{app}`, issue 29: compare) and a user's per-app totals
(`U#{uid}` / `APPUSE#{app}`).

Operations that join a transaction take the caller's `chalicelib.aws.db.Transaction` and add one item
under the name they are given, so the caller reads `TransactionCancelled.reasons` by it.

    recording   mark_event, add_history, count_avatar_app, count_avatar_day, count_user_app   (tx)
    reads       history_page, avatar_apps, user_apps, compared_items, avatar_days
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.aws.db import query_page
from chalicelib.aws.models import (
    AVATAR_DAY_TTL_DAYS,
    META,
    AppUsageSummaryModel,
    AvatarDayUsageModel,
    AvatarModel,
    ProjectModel,
    UsageEventMarkerModel,
    UsageRecordModel,
    avatar_day_sk,
    avatar_days_pk,
    avatar_pk,
    history_pk,
    history_pks,
    history_shard,
    project_sk,
    usage_event_pk,
    user_pk,
)
from chalicelib.errors import DependencyError

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction
    from chalicelib.schemas import UsageEvent


def record_sk(occurred_at: str, app_id: str, event_id: str) -> str:
    """History key: newest first by time; the app is part of it since two apps may share an eventId."""
    return f"USE#{occurred_at}#{app_id}#{event_id}"


# ---- recording (one transaction per user and batch: chalicelib.usage.service) ---------------------

def mark_event(tx: "Transaction", name: str, event: "UsageEvent", *, recorded_at: str, ttl: int) -> None:
    """Transaction item `name`: Put the event's marker (condition: it does not exist — a replay fails it)."""
    tx.save(name, UsageEventMarkerModel(usage_event_pk(event.userId, event.appId, event.eventId),
                                        avatar_id=event.avatarId, recorded_at=recorded_at, ttl=ttl),
            condition=UsageEventMarkerModel.pk.does_not_exist())


def history_row(event: "UsageEvent", recorded_at: str) -> UsageRecordModel:
    """The event's history row, in its shard (models.history_shard) of the avatar's history."""
    return UsageRecordModel(
        history_pk(event.userId, event.avatarId, history_shard(event.appId, event.eventId)),
        record_sk(event.occurredAt, event.appId, event.eventId),
        event_id=event.eventId, avatar_id=event.avatarId, app_id=event.appId, app_name=event.appName,
        action=event.action, reference_id=event.referenceId, reference_type=event.referenceType,
        metadata=event.metadata, occurred_at=event.occurredAt, recorded_at=recorded_at)


def add_history(tx: "Transaction", name: str, event: "UsageEvent", *, recorded_at: str) -> None:
    """Transaction item `name`: Put the event's history row (no condition: the marker guards it)."""
    tx.save(name, history_row(event, recorded_at))


def _not_newer(attr: Any, moment: str) -> Any:
    """`lastUsedAt` only moves forward: canonical UTC timestamps compare correctly as strings."""
    return attr.does_not_exist() | (attr <= moment)


def _count_app(tx: "Transaction", name: str, item: AppUsageSummaryModel, *, app_id: str, uses: int, app_name: str,
               last_used_at: str, guarded: bool) -> None:
    actions = [AppUsageSummaryModel.count.add(uses), AppUsageSummaryModel.app_id.set(app_id)]
    condition = None
    if guarded:
        actions += [AppUsageSummaryModel.app_name.set(app_name), AppUsageSummaryModel.last_used_at.set(last_used_at)]
        condition = _not_newer(AppUsageSummaryModel.last_used_at, last_used_at)
    else:
        actions.append(AppUsageSummaryModel.app_name.set(AppUsageSummaryModel.app_name | app_name))
    tx.update(name, item, actions=actions, condition=condition)


def count_avatar_app(tx: "Transaction", name: str, user_id: str, avatar_id: str, *, app_id: str, uses: int,
                     app_name: str, last_used_at: str, guarded: bool) -> None:
    """Transaction item `name`: the avatar's `APP#{app}` summary — ADD count `uses`, SET appId. Guarded:
    SET appName and lastUsedAt, conditional on the stored lastUsedAt not being newer; unguarded (that
    condition failed before): appName only if it has none, lastUsedAt untouched, no condition."""
    _count_app(tx, name, AppUsageSummaryModel(avatar_pk(user_id, avatar_id), f"APP#{app_id}"), app_id=app_id,
               uses=uses, app_name=app_name, last_used_at=last_used_at, guarded=guarded)


def count_avatar_day(tx: "Transaction", name: str, user_id: str, avatar_id: str, *, day: str, app_id: str,
                     uses: int, app_name: str, ttl: int) -> None:
    """Transaction item `name`: the avatar's counter of `app_id` on `day` (`U#{uid}#A#{aid}#D` /
    `{day}#{app}`) — ADD uses `uses`, SET appId, day, ttl, and appName (the name the batch's latest event
    of that app and day carries). No condition: the events' markers in the same transaction guard it."""
    item = AvatarDayUsageModel(avatar_days_pk(user_id, avatar_id), avatar_day_sk(day, app_id))
    tx.update(name, item, actions=[AvatarDayUsageModel.uses.add(uses), AvatarDayUsageModel.app_id.set(app_id),
                                   AvatarDayUsageModel.day.set(day), AvatarDayUsageModel.app_name.set(app_name),
                                   AvatarDayUsageModel.ttl.set(ttl)])


def day_ttl(day_start_epoch: int) -> int:
    """When a day's counters expire: AVATAR_DAY_TTL_DAYS after the day began."""
    return day_start_epoch + AVATAR_DAY_TTL_DAYS * 86400


def count_user_app(tx: "Transaction", name: str, user_id: str, *, app_id: str, uses: int, app_name: str,
                   last_used_at: str, guarded: bool) -> None:
    """Transaction item `name`: the user's `APPUSE#{app}` total, written as count_avatar_app writes a summary."""
    _count_app(tx, name, AppUsageSummaryModel(user_pk(user_id), f"APPUSE#{app_id}"), app_id=app_id, uses=uses,
               app_name=app_name, last_used_at=last_used_at, guarded=guarded)


# ---- reads ---------------------------------------------------------------------------------------

def history_partitions(user_id: str, avatar_id: str) -> list[str]:
    """Every partition an avatar's history may be in (the avatar's own, then its shards)."""
    return history_pks(user_id, avatar_id)


def history_page(partition: str, *, limit: int, before: str | None) -> tuple[list[UsageRecordModel], bool]:
    """One Query of one history partition, newest first: SK begins_with `USE#`, or (with `before`) SK
    between `USE#` and `before` (inclusive). The rows, and whether the partition has more."""
    condition = (UsageRecordModel.sk.between("USE#", before) if before
                 else UsageRecordModel.sk.startswith("USE#"))
    records, last_key = query_page(UsageRecordModel, partition, limit=limit, range_key_condition=condition,
                                   newest_first=True)
    return records, last_key is not None


def avatar_apps(user_id: str, avatar_id: str, *, limit: int) -> list[AppUsageSummaryModel]:
    """The avatar's per-app summaries: one Query `U#{uid}#A#{aid}`, SK begins_with `APP#`, at most `limit`."""
    items, _ = query_page(AppUsageSummaryModel, avatar_pk(user_id, avatar_id), limit=limit,
                          range_key_condition=AppUsageSummaryModel.sk.startswith("APP#"), newest_first=False)
    return items


def user_apps(user_id: str, *, limit: int) -> list[AppUsageSummaryModel]:
    """The user's per-app totals: one Query `U#{uid}`, SK begins_with `APPUSE#`, at most `limit`."""
    items, _ = query_page(AppUsageSummaryModel, user_pk(user_id), limit=limit,
                          range_key_condition=AppUsageSummaryModel.sk.startswith("APPUSE#"), newest_first=False)
    return items


def compared_items(user_id: str, project_id: str, avatar_ids: list[str]) -> tuple[ProjectModel | None,
                                                                                  dict[str, AvatarModel]]:
    """The project and those of the avatars that exist, by id: ONE BatchGetItem of `U#{uid}` / `P#{pid}`
    and each `U#{uid}#A#{aid}` / META (≤ 5 keys), retried at most twice for keys DynamoDB left
    unprocessed (then DependencyError). Another user's ids build keys that are not there."""
    connection = AvatarModel._get_connection()
    table = AvatarModel.Meta.table_name
    keys = [(user_pk(user_id), project_sk(project_id))] + [(avatar_pk(user_id, a), META) for a in avatar_ids]
    pending = [{"PK": {"S": pk}, "SK": {"S": sk}} for pk, sk in keys]
    items: list[dict] = []
    for _ in range(3):
        data = connection.batch_get_item(pending)
        items += data.get("Responses", {}).get(table, [])
        pending = data.get("UnprocessedKeys", {}).get(table, {}).get("Keys") or []
        if not pending:
            break
    else:
        raise DependencyError("The comparison is temporarily unavailable; try again")
    project = None
    avatars: dict[str, AvatarModel] = {}
    for raw in items:
        if raw["SK"]["S"] == META:
            avatar = AvatarModel.from_raw_data(raw)
            avatars[avatar.id] = avatar
        else:
            project = ProjectModel.from_raw_data(raw)
    return project, avatars


def avatar_days(user_id: str, avatar_id: str, *, first: str, last: str,
                limit: int) -> tuple[list[AvatarDayUsageModel], bool]:
    """The avatar's daily counters from day `first` to day `last` (inclusive), every app: ONE Query
    `U#{uid}#A#{aid}#D`, SK between `{first}` and `{last}#~` (`~` sorts after every app id), oldest
    first, at most `limit` items; and whether more were left unread."""
    items, last_key = query_page(AvatarDayUsageModel, avatar_days_pk(user_id, avatar_id), limit=limit,
                                 range_key_condition=AvatarDayUsageModel.sk.between(first, f"{last}#~"),
                                 newest_first=False)
    return items, last_key is not None
