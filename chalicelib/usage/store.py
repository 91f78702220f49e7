"""Usage's data access, by name: the event markers (`U#{uid}#EVT#{app}#{eid}` / EVT), the history rows
(`U#{uid}#A#{aid}#H#{n}` / `USE#…`, and the avatar's own partition for rows from before issue 32),
an avatar's per-app summaries (`U#{uid}#A#{aid}` / `APP#{app}`) and a user's per-app totals
(`U#{uid}` / `APPUSE#{app}`).

Operations that join a transaction take the caller's `chalicelib.aws.db.Transaction` and add one item
under the name they are given, so the caller reads `TransactionCancelled.reasons` by it.

    recording   mark_event, add_history, count_avatar_app, count_user_app   (tx)
    reads       history_page, avatar_apps, user_apps
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.aws.db import query_page
from chalicelib.aws.models import (
    AppUsageSummaryModel,
    UsageEventMarkerModel,
    UsageRecordModel,
    avatar_pk,
    history_pk,
    history_pks,
    history_shard,
    usage_event_pk,
    user_pk,
)

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
