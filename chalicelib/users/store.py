"""The user counters' data access: every write of a user's counter items, by name.

    STATS                 U#{uid} / STATS            totals, by source, usage, active generations
    DAY#                  U#{uid} / DAY#{yyyy-mm-dd} uploads (and images charged) that UTC day (TTL)
    APPUSE#               U#{uid} / APPUSE#{appId}   the user's usage by app
    RATE#                 RATE#{kind}#{uid}#{second} / W   a rate window, on its own partition (TTL)

Every counter moves with an atomic ADD inside the transaction of the change it counts: operations
that take a `Transaction` add one named item to it ("stats", "day", …) and the caller decides what
else goes in. Nothing here knows why a counter moves.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.aws.models import (STATS, AppUsageSummaryModel, RateWindowModel, UserDayModel, UserStatsModel, rate_window_pk,
                                   user_pk)
from chalicelib.errors import DependencyError

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction

# DAY# items outlive the 7-day upload window and the quota day, then expire.
DAY_TTL_SECONDS = 40 * 86400


def _stats(user_id: str) -> UserStatsModel:
    return UserStatsModel(user_pk(user_id))


def count_projects(tx: "Transaction", user_id: str, delta: int, *, name: str = "stats") -> None:
    """STATS: ADD totalProjects `delta` (a project created or deleted)."""
    tx.update(name, _stats(user_id), actions=[UserStatsModel.total_projects.add(delta)])


def count_avatars(tx: "Transaction", user_id: str, by_source: str, delta: int, *, usage: int | None = None,
                  name: str = "stats") -> None:
    """STATS: ADD totalAvatars and the counter `by_source` (`avatars_uploaded`, `avatars_generated`,
    `avatars_preset`) `delta`, and totalUsage `usage` when given (an avatar leaving takes its uses)."""
    actions = [UserStatsModel.total_avatars.add(delta), getattr(UserStatsModel, by_source).add(delta)]
    if usage is not None:
        actions.append(UserStatsModel.total_usage.add(usage))
    tx.update(name, _stats(user_id), actions=actions)


def count_active_generations(tx: "Transaction", user_id: str, delta: int, *, name: str = "stats") -> None:
    """STATS: ADD activeGenerations `delta`, unconditionally (a job ended or went away)."""
    tx.update(name, _stats(user_id), actions=[UserStatsModel.active_generations.add(delta)])


def count_uploads(tx: "Transaction", user_id: str, now: datetime, delta: int, *, name: str = "day") -> None:
    """DAY# of `now`: ADD uploads `delta`, and the item's TTL (DAY_TTL_SECONDS from now)."""
    tx.update(name, UserDayModel(user_pk(user_id), clock.day_key(now)),
              actions=[UserDayModel.uploads.add(delta), UserDayModel.ttl.set(clock.epoch(now) + DAY_TTL_SECONDS)])


def _app_usage(user_id: str, app_id: str) -> AppUsageSummaryModel:
    return AppUsageSummaryModel(user_pk(user_id), f"APPUSE#{app_id}")


def count_app_usage(tx: "Transaction", user_id: str, app_id: str, delta: int, *, name: str) -> None:
    """APPUSE#{app}: ADD count `delta`, in the caller's transaction."""
    tx.update(name, _app_usage(user_id, app_id), actions=[AppUsageSummaryModel.count.add(delta)])


def count_app_usage_now(user_id: str, app_id: str, delta: int) -> None:
    """APPUSE#{app}: ADD count `delta`, one UpdateItem of its own (what a transaction's 100 items cannot hold)."""
    _app_usage(user_id, app_id).update(actions=[AppUsageSummaryModel.count.add(delta)])


# ---- used by generation / usage / events

def charge_images(tx: "Transaction", user_id: str, day: str, *, images: int, limit: int, ttl: int,
                  name: str = "daily") -> None:
    """Transaction item `name`: `DAY#{day}` ADD generations `images`, SET ttl (condition: the day's
    count is absent or at most `limit - images`)."""
    tx.update(name, UserDayModel(user_pk(user_id), day),
              actions=[UserDayModel.generations.add(images), UserDayModel.ttl.set(ttl)],
              condition=UserDayModel.generations.does_not_exist() | (UserDayModel.generations < limit - images + 1))


def give_back_images(tx: "Transaction", user_id: str, day: str, images: int, *, name: str = "refund") -> None:
    """Transaction item `name`: `DAY#{day}` ADD generations `-images` (no condition)."""
    tx.update(name, UserDayModel(user_pk(user_id), day), actions=[UserDayModel.generations.add(-images)])


def start_jobs(tx: "Transaction", user_id: str, *, jobs: int, limit: int, name: str = "active") -> None:
    """Transaction item `name`: STATS ADD activeGenerations `jobs` (condition: absent or at most
    `limit - jobs`)."""
    tx.update(name, UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.active_generations.add(jobs)],
              condition=UserStatsModel.active_generations.does_not_exist()
              | (UserStatsModel.active_generations < limit - jobs + 1))


def end_job(tx: "Transaction", user_id: str, *, name: str = "stats") -> None:
    """Transaction item `name`: STATS ADD activeGenerations -1 (no condition)."""
    tx.update(name, UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.active_generations.add(-1)])


def count_usage(tx: "Transaction", user_id: str, uses: int, *, name: str = "stats") -> None:
    """Transaction item `name`: STATS ADD totalUsage `uses` (no condition)."""
    tx.update(name, UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.total_usage.add(uses)])


def read_counters(user_id: str, days: list[str]) -> tuple[UserStatsModel, dict[str, UserDayModel]]:
    """STATS and the `days`' DAY# items: one BatchGetItem (≤ 100 keys), retried at most twice for keys
    DynamoDB left unprocessed (then DependencyError). STATS that does not exist yet reads as zeros;
    days without an item are left out."""
    pk = user_pk(user_id)
    connection = UserStatsModel._get_connection()
    pending = [{"PK": {"S": pk}, "SK": {"S": sk}} for sk in [STATS, *days]]
    items: list[dict] = []
    for _ in range(3):
        data = connection.batch_get_item(pending)
        items += data.get("Responses", {}).get(UserStatsModel.Meta.table_name, [])
        pending = data.get("UnprocessedKeys", {}).get(UserStatsModel.Meta.table_name, {}).get("Keys") or []
        if not pending:
            break
    else:
        raise DependencyError("Stats are temporarily unavailable; try again")
    stats = UserStatsModel(pk, STATS)
    found: dict[str, UserDayModel] = {}
    for raw in items:
        if raw["SK"]["S"] == STATS:
            stats = UserStatsModel.from_raw_data(raw)
        else:
            found[raw["SK"]["S"]] = UserDayModel.from_raw_data(raw)
    return stats, found


THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded")


def count_request(kind: str, user_id: str, second: int, *, limit: int, ttl: int) -> str:
    """UpdateItem on the rate window `RATE#{kind}#{uid}#{second}` / W: ADD count 1, SET ttl (condition:
    count absent or below `limit`). "counted"; "full" when the condition failed; "throttled" when
    DynamoDB throttled the window's partition."""
    from pynamodb.exceptions import UpdateError

    from chalicelib.aws.db import condition_failed

    window = RateWindowModel(rate_window_pk(kind, user_id, second))
    try:
        window.update(actions=[RateWindowModel.count.add(1), RateWindowModel.ttl.set(ttl)],
                      condition=RateWindowModel.count.does_not_exist() | (RateWindowModel.count < limit))
    except UpdateError as exc:
        if condition_failed(exc):
            return "full"
        if getattr(exc, "cause_response_code", None) in THROTTLED:
            return "throttled"
        raise
    return "counted"
