"""The job lifecycle, and the only code that changes a generation's status.

    pending ──claim──► processing ──record/fail each image──► (every slot ended) ──settle──► completed | failed
       ▲                   │  hand_on: out of time → pending (handedOn), a new message carries it on
       └───── release ─────┘  release: a transient failure → pending, the same message after a backoff
    pending ──cancel──► cancelled          any active ──finish──► failed (dead letter, deadline, queue time)

A job is one resumable unit with one slot per image (docs/architecture.md has the state table). One
run owns it at a time: `claim` gives it a token and a lease (`leaseUntil`, epoch seconds), and every
later write of that run is conditional on the token, so a run that lost the job changes nothing.

The one rule for a delivery that finds the job processing: `leaseUntil <= now` takes it over,
otherwise the delivery comes back after `leaseUntil - now + 1` seconds (`wait_seconds`). Together they
cover every instant, so no delivery is ever dropped at a lease boundary, whatever the clocks say.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import clock

from chalicelib.avatars import service as avatars
from chalicelib.avatars import store as avatar_store
from chalicelib.aws.db import Transaction, TransactionCancelled
from chalicelib.errors import DependencyError
from chalicelib.generation import quota
from chalicelib.generation import store
from chalicelib.generation.spec import images_of
from chalicelib.teams import store as team_store
from chalicelib.users import store as user_store

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import AvatarModel, GenerationModel
    from chalicelib.config import Settings

ACTIVE = ("pending", "processing")
TERMINAL = ("completed", "failed", "cancelled")
# A made image whose record meets a concurrent write (TransactionConflict on the user's STATS or the
# project) is recorded again after these pauses, within the 10 s the worker keeps for saving.
RECORD_CONFLICT_PAUSES = (0.05, 0.2, 0.5)


# ---- slots --------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    return dict(value.as_dict()) if hasattr(value, "as_dict") else dict(value)


def slots_of(generation: "GenerationModel") -> list[dict]:
    """The job's image slots; a job from before slots starts with every image to do."""
    if generation.slots:
        return [_plain(s) for s in generation.slots]
    request = generation.request.as_dict() if generation.request is not None else {}
    return [{"state": "todo", "tries": 0} for _ in range(images_of(request))]


def progress_of(slots: list[dict]) -> int:
    ended = sum(1 for s in slots if s["state"] != "todo")
    return 10 + (85 * ended) // max(1, len(slots))


def fail_open(slots: list[dict], code: str, message: str) -> list[dict]:
    """Every slot still to do ends failed with this reason (the job ends as a whole)."""
    return [{**s, "state": "failed", "code": code, "message": message[:300]} if s["state"] == "todo" else s
            for s in slots]


# ---- the one rule -------------------------------------------------------------------------------

def lease_ended(lease_until: Any, now: datetime) -> bool:
    return lease_until is None or int(lease_until) <= clock.epoch(now)


def wait_seconds(lease_until: Any, now: datetime) -> int:
    """How long a delivery that found the job held waits before it comes back (at least 1 s)."""
    return max(1, int(lease_until or 0) - clock.epoch(now) + 1)


# ---- a retry ------------------------------------------------------------------------------------

def requeue(tx: Transaction, generation: "GenerationModel", now: datetime, deadline: str,
            started_by: str | None = None) -> None:
    """failed → pending for a user's retry, in the caller's transaction (operation "generation",
    refused unless the job is still `failed`): as if new — no slots, attempts or results — charged to
    today (`quotaDay`) and due in the queue by `deadline`."""
    store.requeue(tx, generation, from_status="failed", now_iso=clock.iso(now), quota_day=clock.day_key(now),
                  deadline=deadline, started_by=started_by)


# ---- ending a job -------------------------------------------------------------------------------

def finish(connection: Any, generation: "GenerationModel", status: str, *, from_statuses: tuple[str, ...],
           error_code: str | None = None, error_message: str | None = None, claim_token: str | None = None,
           slots: list[dict] | None = None, refund_open: bool = False, clear_error: bool = False,
           dead_lettered_at: str | None = None, drop_token: bool = False) -> bool:
    """The terminal transition: status, the active-job counter and the quota given back, in one
    transaction. False if the generation was no longer in `from_statuses` (someone else ended it),
    is gone, or — with `claim_token` — is no longer owned by that run."""
    slots = slots if slots is not None else slots_of(generation)
    now = clock.now_iso()
    given_back = quota.refunded(slots, everything_open=refund_open)
    for _ in range(3):
        try:
            with Transaction(connection) as tx:
                store.end(tx, generation, status=status, from_statuses=from_statuses, token=claim_token, slots=slots,
                          now_iso=now, progress=100 if status == "completed" else None, error_code=error_code,
                          error_message=error_message[:500] if error_message is not None else None,
                          clear_error=clear_error, dead_lettered_at=dead_lettered_at, drop_token=drop_token)
                user_store.end_job(tx, store.payer(generation))
                quota.refund(tx, store.payer(generation), quota.charged_day(generation), given_back)
            return True
        except TransactionCancelled as cancelled:
            if cancelled.failed("generation"):
                return False
            if not cancelled.conflict:
                raise
    raise DependencyError("The generation could not be updated; please try again")


def settle(connection: Any, job: "Claim") -> str:
    """Every slot has ended: completed with what was made, or failed when nothing was."""
    made = [s for s in job.slots if s["state"] == "done"]
    failed = store.failures_of(job.slots)
    if made:
        message = (f"{len(failed)} of {len(job.slots)} images failed: {failed[0]['message']}" if failed else None)
        ok = finish(connection, job.generation, "completed", from_statuses=("processing",), claim_token=job.token,
                    slots=job.slots, error_code=failed[0]["code"] if failed else None, error_message=message,
                    clear_error=not failed)
        return "completed" if ok else "skipped: the job was taken from this run"
    ok = finish(connection, job.generation, "failed", from_statuses=("processing",), claim_token=job.token,
                slots=job.slots, error_code=failed[0]["code"], error_message=failed[0]["message"])
    return ("failed: " + failed[0]["message"]) if ok else "skipped: the job was taken from this run"


def end_as_whole(connection: Any, generation: "GenerationModel", code: str, message: str, *,
                 claim_token: str | None = None, dead_lettered_at: str | None = None,
                 drop_token: bool = False) -> bool:
    """An active job ends whoever holds it: the images still to do fail with this reason (given back
    unless the user caused it). Images already made stay: such a job ends `completed`, so a retry
    never asks for an image that exists."""
    slots = fail_open(slots_of(generation), code, message)
    status = "completed" if any(s["state"] == "done" for s in slots) else "failed"
    return finish(connection, generation, status, from_statuses=ACTIVE, error_code=code, error_message=message,
                  slots=slots, claim_token=claim_token, dead_lettered_at=dead_lettered_at, drop_token=drop_token)


def cancel(connection: Any, generation: "GenerationModel") -> bool:
    """pending → cancelled, every image back to the quota. A job waiting between runs may have
    made images already: it keeps them and ends `completed`, the rest failed as `cancelled`."""
    slots = slots_of(generation)
    if any(s["state"] == "done" for s in slots):
        return finish(connection, generation, "completed", from_statuses=("pending",), error_code="cancelled",
                      error_message="Cancelled before every image was made",
                      slots=fail_open(slots, "cancelled", "Cancelled before it was made"))
    return finish(connection, generation, "cancelled", from_statuses=("pending",), refund_open=True)


def dead_letter(connection: Any, user_id: str, generation_id: str) -> str:
    """A job message reached the DLQ: make sure its generation is not left active. Every write is
    conditional on the generation still existing: a purge may have removed it."""
    generation = store.get(user_id, generation_id, consistent=True)
    if generation is None:
        return "skipped: unknown generation"
    at = clock.now_iso()
    if generation.status in TERMINAL:
        store.mark_dead_lettered(generation, at)
        return f"recorded: already {generation.status}"
    if generation.status == "processing" and not lease_ended(generation.lease_until, clock.now()):
        store.mark_dead_lettered(generation, at)  # a live run holds it: that run ends it, or hands it on
        return "recorded: held by a live run"
    attempts = int(generation.attempts or 0)
    code = generation.error_code or "dead_lettered"
    reason = (generation.error_message or "The job kept failing").split("; retrying")[0]
    message = f"{reason} (gave up after {attempts} attempts)"
    if not end_as_whole(connection, generation, code, message, dead_lettered_at=at):
        store.mark_dead_lettered(generation, at)  # ended meanwhile by the last attempt (or purged: nothing written)
    return "failed"


def expire(connection: Any, settings: "Settings", generation: "GenerationModel", now: datetime) -> str:
    """The sweeper found the job past the deadline it indexed. Its own timestamps decide:
    a job waiting in the queue (never claimed, or handed back since) fails `queue_timeout` once it has
    waited GENERATION_MAX_QUEUE_SECONDS since it was queued or handed back; a job whose run ended
    without ending it fails `timed_out` once GENERATION_DEADLINE_SECONDS have passed since its first
    claim; a job held by a live run is never failed. Otherwise the index moves to the real deadline."""
    if generation.status == "processing" and not lease_ended(generation.lease_until, now):
        return _reindex(generation, datetime.fromtimestamp(int(generation.lease_until) + 1, tz=now.tzinfo))
    if generation.status == "pending":
        since = generation.updated_at if generation.started_at else (generation.queued_at or generation.created_at)
        due = datetime.fromisoformat(since) + timedelta(seconds=settings.generation_max_queue_seconds)
        code, message = "queue_timeout", "The generation waited too long in the queue; please retry"
    else:
        started = generation.started_at or generation.updated_at
        due = datetime.fromisoformat(started) + timedelta(seconds=settings.generation_deadline_seconds)
        code, message = "timed_out", "The generation did not finish in time; please retry"
    if now < due:
        return _reindex(generation, due)
    ended = end_as_whole(connection, generation, code, message, drop_token=True)
    return code if ended else "skipped"


def _reindex(generation: "GenerationModel", due: datetime) -> str:
    store.move_deadline(generation, clock.iso(due), while_status_in=ACTIVE)
    return "waiting"


# ---- one run's ownership ------------------------------------------------------------------------

class Lost(Exception):
    """The run no longer owns the job (taken over after its lease, ended by the sweeper, purged)."""


@dataclass
class Claim:
    """One run's hold on a job. Only the run's own thread uses it (and its model object). Every write
    is conditional on the run's token: one that finds the job no longer this run's raises Lost."""
    generation: "GenerationModel"
    token: str
    attempt: int
    slots: list[dict] = field(default_factory=list)

    @staticmethod
    def _owned(written: bool) -> None:
        if not written:
            raise Lost()

    def note_failure(self, index: int, code: str, message: str, *, for_good: bool,
                     retry_after: float | None = None) -> None:
        """An image failed: for good (it ends failed) or for now (it is tried again on a retry)."""
        slot = self.slots[index]
        slot.update(code=code, message=message[:300], tries=int(slot.get("tries") or 0) + 1)
        if for_good:
            slot["state"] = "failed"
        else:  # tried again on the next attempt, after its backoff; not by a continuation of this one
            slot["failedIn"] = self.attempt
            if retry_after:
                slot["retryAfter"] = int(retry_after)
        self._owned(store.write_slots(self.generation, self.token, slots=self.slots,
                                      progress=progress_of(self.slots), now_iso=clock.now_iso()))

    def record_summary(self, *, provider_ms: int, safety: str | None, provider: str | None,
                       model: str | None) -> None:
        """What the page shows of the run that ends the job: the classifier, the model, time in the provider."""
        self._owned(store.write_summary(self.generation, self.token, provider_ms=provider_ms, safety=safety,
                                        provider=provider, model=model))

    def record_image(self, connection: Any, index: int, avatar: "AvatarModel") -> str:
        """A made image: its avatar (ready), the project's and user's counts and the slot, in one
        transaction. "recorded", or "project gone"; Lost when the job is no longer this run's."""
        now = clock.now()
        slots = [dict(s) for s in self.slots]
        slots[index].update(state="done", avatarId=avatar.id)
        slots[index].pop("code", None)
        slots[index].pop("message", None)
        for pause in (*RECORD_CONFLICT_PAUSES, None):
            try:
                with Transaction(connection) as tx:
                    store.record_image(tx, self.generation, self.token, slots=slots, progress=progress_of(slots),
                                       now_iso=clock.iso(now))
                    avatar_store.add_generated(tx, avatar)
                    team_store.add_item_home(tx, "avatar", avatar.id, avatar.user_id, avatar.project_id,
                                             name="avatar home")
                    avatars.count_new_avatar(tx, avatar, now)
            except TransactionCancelled as cancelled:
                if cancelled.failed("generation") or cancelled.failed("avatar"):
                    raise Lost() from None
                if cancelled.failed("project"):
                    return "project gone"
                if cancelled.conflict and pause is not None:
                    # The image is made and paid for: a write that met a concurrent one (the user's
                    # STATS, the project's count) is retried here rather than by a new run, which
                    # would ask the provider for the image again.
                    time.sleep(pause)
                    continue
                raise
            self.slots = slots
            return "recorded"
        raise AssertionError("unreachable")  # the last pause is None: the loop returns or raises

    def release(self, error_code: str, error_message: str) -> None:
        """A transient failure: back to pending for the same message's next delivery (a new attempt)."""
        self._owned(store.release(self.generation, self.token, error_code=error_code,
                                  error_message=error_message[:500], now_iso=clock.now_iso()))

    def hand_on(self) -> None:
        """Out of time: back to pending, marked so the next claim continues this attempt."""
        self._owned(store.hand_on(self.generation, self.token, now_iso=clock.now_iso()))

    def abandon(self) -> bool:
        """An unexpected error: hand the job back at once rather than make the next delivery wait
        out the lease (a new attempt). False if it was no longer this run's."""
        return store.abandon(self.generation, self.token, now_iso=clock.now_iso())


def claim(generation: "GenerationModel", settings: "Settings", now: datetime | None = None) -> Claim | None:
    """Take the job as it was read: pending, or processing with its lease ended. None when another
    run holds it or it moved on. A continuation (handed on for time) is not a new attempt; a first
    claim starts the running deadline (GENERATION_DEADLINE_SECONDS)."""
    now = now or clock.now()
    epoch = clock.epoch(now)
    continuing = generation.status == "pending" and bool(generation.handed_on)
    token = secrets.token_hex(8)
    slots = slots_of(generation)
    started = None
    if generation.started_at is None:
        started = (clock.iso(now), clock.iso(now + timedelta(seconds=settings.generation_deadline_seconds)))
    if not store.claim(generation, continuing=continuing, epoch=epoch, token=token,
                       lease_until=epoch + settings.generation_lease_seconds, progress=progress_of(slots),
                       now_iso=clock.iso(now), slots=None if generation.slots else slots, started=started):
        return None
    return Claim(generation, token, int(generation.attempts or 1), slots_of(generation))
