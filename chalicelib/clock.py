"""UTC time in the one format the service stores and answers (ISO 8601, milliseconds, Z)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(now())


def day_key(dt: datetime) -> str:
    return "DAY#" + dt.astimezone(timezone.utc).strftime("%Y-%m-%d")


def last_days(dt: datetime, days: int) -> list[str]:
    return [day_key(dt - timedelta(days=offset)) for offset in range(days)]


def epoch(dt: datetime) -> int:
    return int(dt.timestamp())
