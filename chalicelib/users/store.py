"""A user's counters' data access: `U#{uid}` / STATS (totals), `U#{uid}` / `DAY#{day}` (per UTC day),
rate windows (`RATE#{kind}#{uid}#{second}` / W), by name. Operations that join a transaction take the
caller's `chalicelib.aws.db.Transaction` and add one named item to it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.aws.models import STATS, RateWindowModel, UserDayModel, UserStatsModel, rate_window_pk, user_pk
from chalicelib.errors import DependencyError

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction


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
