"""The user counters' data access: every write of a user's counter items, by name.

    STATS                 U#{uid} / STATS            totals, by source, usage, active generations
    DAY#                  U#{uid} / DAY#{yyyy-mm-dd} uploads (and images charged) that UTC day (TTL)
    APPUSE#               U#{uid} / APPUSE#{appId}   the user's usage by app

Every counter moves with an atomic ADD inside the transaction of the change it counts: operations
that take a `Transaction` add one named item to it ("stats", "day", …) and the caller decides what
else goes in. Nothing here knows why a counter moves.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.aws.models import AppUsageSummaryModel, UserDayModel, UserStatsModel, user_pk

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
