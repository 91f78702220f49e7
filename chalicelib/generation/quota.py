"""The generation quotas: images per user per UTC day, jobs running at once.

A request is charged when it starts (or is retried): the images it asks for go on the day it was
charged, which the job records (`quotaDay`), and the job counts as active. When the job ends, the
images that failed for reasons that are not the user's are given back to that same day, even when
the job ends on the next one — the way job APIs don't bill failed predictions.

Kept charged: images made, and images lost to something the user caused (`USER_CAUSED`).
Given back: everything else (provider down, refusing or timing out, unusable output, no classifier,
`queue_timeout`, `timed_out`, dead-lettered jobs) and the images of a job cancelled before it ran.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib import clock
from chalicelib.errors import QuotaExceededError
from chalicelib.users import store as user_store

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction, TransactionCancelled
    from chalicelib.config import Settings

# Failure codes that are the user's doing: the image stays counted.
USER_CAUSED = frozenset({"unsafe_output", "source_missing", "project_deleted"})
ACTIVE_RETRY_AFTER_SECONDS = 30
DAY_TTL_SECONDS = 40 * 86400


def seconds_to_midnight(now: datetime | None = None) -> int:
    now = now or clock.now()
    return max(1, 86400 - (now.hour * 3600 + now.minute * 60 + now.second))


def charge(tx: "Transaction", user_id: str, settings: "Settings", now: datetime, *, images: int, jobs: int = 1) -> None:
    """Operations "daily" (images, conditional on the limit) and "active" (jobs, conditional on the cap)."""
    limit = settings.generation_daily_limit
    if images > limit:
        raise QuotaExceededError(
            f"Daily generation limit is {limit} images; this request asks for {images}",
            retry_after=seconds_to_midnight(now), details={"limit": limit, "kind": "daily", "images": images})
    if jobs > settings.generation_active_limit:
        raise QuotaExceededError(
            f"At most {settings.generation_active_limit} generations may run at once; this request starts {jobs}",
            retry_after=ACTIVE_RETRY_AFTER_SECONDS,
            details={"limit": settings.generation_active_limit, "kind": "active", "jobs": jobs})
    user_store.charge_images(tx, user_id, clock.day_key(now), images=images, limit=limit,
                             ttl=clock.epoch(now) + DAY_TTL_SECONDS, name="daily")
    user_store.start_jobs(tx, user_id, jobs=jobs, limit=settings.generation_active_limit, name="active")


def raise_if_over(cancelled: "TransactionCancelled", settings: "Settings") -> None:
    """A cancelled charge as the 429 that says which limit, and until when."""
    if cancelled.failed("daily"):
        raise QuotaExceededError(
            f"Daily generation limit reached ({settings.generation_daily_limit} images per day)",
            retry_after=seconds_to_midnight(), details={"limit": settings.generation_daily_limit, "kind": "daily"})
    if cancelled.failed("active"):
        raise QuotaExceededError(
            f"{settings.generation_active_limit} generations are running; wait for one to finish or cancel one",
            retry_after=ACTIVE_RETRY_AFTER_SECONDS,
            details={"limit": settings.generation_active_limit, "kind": "active"})


def refunded(slots: list[dict], *, everything_open: bool = False) -> int:
    """How many of a finished job's images go back: those failed for a reason that is not the
    user's, and (`everything_open`, a job ended as a whole for our reason) those never attempted."""
    count = 0
    for slot in slots:
        if slot["state"] == "failed" and slot.get("code") not in USER_CAUSED:
            count += 1
        elif slot["state"] == "todo" and everything_open:
            count += 1
    return count


def refund(tx: "Transaction", user_id: str, day: str, images: int) -> None:
    """Operation "refund": give `images` back to the day that was charged."""
    if images > 0:
        user_store.give_back_images(tx, user_id, day, images, name="refund")


def charged_day(generation: Any) -> str:
    """The day a job's images were charged to (jobs from before quotaDay: the day they were queued)."""
    if generation.quota_day:
        return generation.quota_day
    return clock.day_key(datetime.fromisoformat(generation.queued_at or generation.created_at))
