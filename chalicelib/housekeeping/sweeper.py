"""Housekeeping on a schedule: whatever a crash, a lost message or a timeout left half-done is
finished here, so every accepted thing ends.

    overdue work    the sparse sweep index (GSI3) holds every item that must end by a deadline: an
                    active generation (→ failed), an uploading avatar (→ rejected), a deleting avatar
                    (→ deleted), a project tombstone (→ its purge is sent again)
    stray files     files whose intent (chalicelib/avatars/file_intents.py) has expired and no avatar points at;
                    and a bounded walk over images/, thumbs/ and display/ for files older than intents

Each step is one of the domain's own idempotent operations, so a sweep racing a worker, or another
sweep, changes nothing twice. Reads are Queries on the index and one page of the bucket per run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import clock
from chalicelib.avatars import file_intents
from chalicelib.avatars.file_intents import INTENTS_PER_SHARD
from chalicelib.housekeeping import store
from chalicelib.observability import logger

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import Settings
    from chalicelib.aws.storage import Storage

# Files younger than this are never touched: their item may be a moment from being written.
FILE_GRACE_SECONDS = 3600
FILES_PER_RUN = 1000
OVERDUE_PER_SHARD = 200


@dataclass
class SweepReport:
    generations_failed: list[str] = field(default_factory=list)
    uploads_rejected: list[str] = field(default_factory=list)
    avatars_deleted: list[str] = field(default_factory=list)
    purges_resent: list[str] = field(default_factory=list)
    exports_swept: list[str] = field(default_factory=list)  # resent, failed or expired (chalicelib/exports)
    backfills_resent: list[str] = field(default_factory=list)  # projects whose HOME backfill started again
    files_removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # items whose step failed (tried again next run)

    def counts(self) -> dict[str, int]:
        return {name: len(value) for name, value in vars(self).items()}


def sweep(connection: Any, storage: "Storage", sqs: Any, settings: "Settings", *,
          now: datetime | None = None, files: bool = True) -> SweepReport:
    """One pass. An item whose step fails is logged, counted (`errors`) and skipped: the next pass
    tries it again, and the rest of this one goes on."""
    now = now or clock.now()
    report = SweepReport()
    for item in store.overdue(clock.iso(now), limit=OVERDUE_PER_SHARD):
        try:
            _sweep_item(connection, storage, sqs, settings, report, item, now)
        except Exception:  # noqa: BLE001 — one bad item must not stop the others (or the file walk)
            logger.exception("sweep step failed", extra={"pk": item.pk, "sk": item.sk})
            report.errors.append(f"{item.pk}|{item.sk}")
    if files:

        try:
            # Files whose intent expired: found in time proportional to the files written.
            report.files_removed = check_expired_intents(storage, now)
        except Exception:  # noqa: BLE001 — the intents stay; the next run checks them again
            logger.exception("file intent check failed")
            report.errors.append("file intents")
        try:
            # The walk: files from before intents existed, one bounded page per run (a backstop).
            report.files_removed += remove_stray_files(storage, now)
        except Exception:  # noqa: BLE001 — the walk resumes where it stopped on the next run
            logger.exception("stray file walk failed")
            report.errors.append("files")
    counts = report.counts()
    if any(counts.values()):
        logger.info("sweep", extra=counts)
    return report


def _sweep_item(connection: Any, storage: "Storage", sqs: Any, settings: "Settings", report: SweepReport,
                item: store.Overdue, now: datetime) -> None:
    """One overdue item's step; an item gone meanwhile was finished by someone else."""
    from chalicelib.avatars import service as avatars, store as avatar_store
    from chalicelib.projects import service as projects, store as project_store
    from chalicelib.avatars import uploads
    from chalicelib.generation import jobs
    from chalicelib.generation import store as generation_store

    from chalicelib.exports import service as exports

    if exports.owns(item.pk, item.sk):
        from chalicelib.exports.files import ExportFiles

        if exports.sweep_item(ExportFiles.of(storage), sqs, settings, item.pk, item.sk, now):
            report.exports_swept.append(item.pk)
    elif item.kind == "backfill":
        from chalicelib.teams import service as teams

        if teams.resend_backfill(sqs, settings.cleanup_queue_url, item.item_id):
            report.backfills_resent.append(item.item_id)
    elif item.kind == "tombstone":
        tombstone = project_store.tombstone(item.user_id, item.item_id)
        if tombstone is not None and projects.resend_purge(sqs, settings.cleanup_queue_url, tombstone, now):
            report.purges_resent.append(tombstone.project_id)
    elif item.kind == "generation":
        job = generation_store.get(item.user_id, item.item_id, consistent=True)
        if job is not None and job.status in jobs.ACTIVE and jobs.expire(connection, settings, job, now) in (
                "queue_timeout", "timed_out"):
            report.generations_failed.append(job.id)
    elif item.kind == "avatar":
        avatar = avatar_store.get(item.user_id, item.item_id, consistent=True)
        if avatar is None:
            return
        if avatar.status == "uploading" and uploads.expire(storage, avatar) == "rejected":
            report.uploads_rejected.append(avatar.id)
        elif avatar.status == "deleting" and avatars.delete_avatar(connection, storage, avatar):
            report.avatars_deleted.append(avatar.id)


def referenced_files(keys: list[str]) -> set[str]:
    """The files among `keys` that an avatar (not being deleted) points at: one BatchGet per 100 avatars."""
    from chalicelib.avatars import store as avatar_store
    from chalicelib.aws.storage import owner_of

    owners = [owner for owner in (owner_of(key) for key in keys) if owner]
    referenced: set[str] = set()
    for avatar in avatar_store.files_and_status(owners):
        if avatar.status != "deleting":
            referenced.update(k for k in (avatar.image_key, avatar.thumbnail_key, avatar.display_key) if k)
    return referenced


def stray_files(storage: "Storage", objects: list[dict], now: datetime) -> list[str]:
    """The files among `objects` that no avatar points at (older than the grace period)."""
    from chalicelib.aws.storage import owner_of

    old = [o["Key"] for o in objects if o["LastModified"] < now - timedelta(seconds=FILE_GRACE_SECONDS)]
    referenced = referenced_files(old)
    return [key for key in old if owner_of(key) is None or key not in referenced]


def remove_stray_files(storage: "Storage", now: datetime, *, limit: int = FILES_PER_RUN) -> list[str]:
    """One bounded step (at most `limit` keys) of a walk over the derived files, resumed where the last
    run stopped; the walk starts over once it has passed the last prefix."""
    from chalicelib.aws.storage import DERIVED_PREFIXES

    after = store.walk_position() or ""
    objects: list[dict] = []
    for prefix in DERIVED_PREFIXES:
        if after >= prefix + "\uffff" or len(objects) >= limit:
            continue
        page = storage.list_page(prefix, start_after=after if after.startswith(prefix) else None,
                                 limit=limit - len(objects))
        objects += page
        if len(objects) >= limit:
            break
    strays = stray_files(storage, objects, now)
    storage.delete(strays)
    # None: start over next run
    store.save_walk_position(objects[-1]["Key"] if len(objects) >= limit else None, now=clock.iso(now))
    return strays


def check_expired_intents(storage: "Storage", now: datetime, *, limit: int = INTENTS_PER_SHARD) -> list[str]:
    """Remove the files of expired intents that no avatar points at, then those intents; returns the
    files removed."""
    keys = file_intents.expired(now, limit=limit)
    if not keys:
        return []
    kept = referenced_files(keys)
    strays = [key for key in keys if key not in kept]
    storage.delete(strays)  # first the files: a crash here leaves the intents, so the next run retries
    file_intents.forget(keys)
    return strays
