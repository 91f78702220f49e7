"""Exports: a zip of one avatar or of a project's avatars (files, metadata, usage history, a manifest
of SHA-256 checksums), streamed to S3 as a multipart upload in bounded memory, step by step.

    start     the API's side: the target must be the caller's (404 otherwise), then one item
              (`pending`) and one message; answers at once (202)
    run_step  one delivery: claim the step, write avatars until the time left is short, then either
              finish the zip (complete the upload → `completed`) or hand on (checkpoint → step + 1)
    sweep     the sweeper's side: a stalled chain is sent again (twice), then failed; an ended export
              past its retention has its files removed → `expired`

The chain works like a project purge's: the item holds `step`; only the message carrying it runs,
and only the run holding the claim (`claimToken`, lease) may write, so a duplicate message does
nothing twice. docs/exports.md has the states, the zip layout and the timing.
"""
from __future__ import annotations

import csv
import io
import json
import re
import time
import unicodedata
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterator

from chalicelib import clock, ids
from chalicelib.errors import ConflictError, DependencyError, NotFoundError, QuotaExceededError
from chalicelib.exports import store
from chalicelib.exports.files import ExportFiles, checkpoint_key, zip_key
from chalicelib.exports.zipstream import PartBuffer, ZipStream
from chalicelib.observability import logger

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import AvatarModel, ExportModel
    from chalicelib.config import Settings

FORMAT = "avatar-export.v1"
MESSAGE = "export.step"
# A stalled chain is started again this many times by the sweeper before the export fails.
MAX_RESENDS = 2
ITEM_TTL_DAYS = 30  # an expired export's item stays this long (its status answers `expired`)
PROGRESS_EVERY_SECONDS = 5.0
HISTORY_PAGE = 100
EXT = {"jpg", "jpeg", "png", "webp"}


def _not_found(export_id: str) -> NotFoundError:
    return NotFoundError("Export not found", details={"exportId": export_id})


# ---- the API's side -----------------------------------------------------------------------------

def start(connection: Any, sqs: Any, settings: "Settings", user_id: str, scope: str, target_id: str, *,
          home: str | None = None) -> "ExportModel":
    """Another user's (or a missing) avatar or project is 404, exactly as reading it would be; past
    `export_daily_limit` exports today, 429 until midnight UTC. `home`: whose partition holds the target
    (a member's export of a shared project, issue 30); the export is `user_id`'s either way."""
    from chalicelib.avatars import service as avatars

    owner = user_id
    user_id = home or user_id  # the reads below

    if scope == "avatar":
        avatar = avatars.get_avatar(user_id, target_id)
        if avatar.status != "ready":
            raise ConflictError("Only a ready avatar can be exported", code="invalid_state",
                                details={"avatarId": target_id, "status": avatar.status})
        total = 1
    elif scope == "project":
        from chalicelib.projects import service as projects

        total = int(projects.get_project(user_id, target_id).avatar_count or 0)
    else:  # pragma: no cover — the routes name the scope
        raise ValueError(scope)
    if not settings.export_queue_url:
        raise DependencyError("Exports are not configured")
    now = clock.now()
    user_id = owner
    export = store.new(user_id, ids.new_id("exp"), scope=scope, target_id=target_id, total=total, now=now,
                       expires_at=clock.iso(now + timedelta(days=settings.export_retention_days)),
                       deadline=clock.iso(now + timedelta(seconds=settings.export_stall_seconds)), home=home)
    if not store.create(connection, export, daily_limit=settings.export_daily_limit, now=now):
        from chalicelib.generation.quota import seconds_to_midnight

        raise QuotaExceededError(f"Daily export limit reached ({settings.export_daily_limit} per day)",
                                 retry_after=seconds_to_midnight(now),
                                 details={"limit": settings.export_daily_limit, "kind": "exports"})
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        send_step(sqs, settings.export_queue_url, user_id, export.id, 0)
    except (BotoCoreError, ClientError) as exc:
        logger.error("export enqueue failed", extra={"exportId": export.id, "error": str(exc)})
        store.fail(export, "queue_failed", "The export could not be queued", now)
        raise DependencyError("The export could not be started; try again") from exc
    return export


def get_export(user_id: str, export_id: str) -> "ExportModel":
    export = store.get(user_id, export_id)
    if export is None:
        raise _not_found(export_id)
    return export


def to_json(export: "ExportModel", storage: Any, settings: "Settings") -> dict:
    """The download URL is signed anew at each read, short-lived, and only for a completed export that
    has not expired (an export whose avatar or project was deleted expires at once, before the sweeper
    has removed its files)."""
    over = export.status == "completed" and export.expires_at <= clock.now_iso()
    done = export.status == "completed" and not over
    return {
        "id": export.id,
        "scope": export.scope,
        "targetId": export.target_id,
        "status": "expired" if over else export.status,
        "progress": {"done": int(export.done or 0), "total": int(export.total or 0)},
        "downloadUrl": storage.presigned_get(export.key, settings.export_url_expiry_seconds) if done else None,
        "downloadExpiresIn": settings.export_url_expiry_seconds if done else None,
        "bytes": int(export.size) if done and export.size is not None else None,
        "errorCode": export.error_code,
        "errorMessage": export.error_message,
        "createdAt": export.created_at,
        "updatedAt": export.updated_at,
        "completedAt": export.completed_at,
        "expiresAt": export.expires_at,
    }


# ---- messages -----------------------------------------------------------------------------------

def send_step(sqs: Any, queue_url: str | None, user_id: str, export_id: str, step: int) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(
        {"type": MESSAGE, "userId": user_id, "exportId": export_id, "step": step}))


def parse_message(body: str) -> tuple[str, str, int]:
    """(user id, export id, step); ValueError/TypeError/KeyError for anything else."""
    message = json.loads(body)
    user_id, export_id, step = message["userId"], message["exportId"], message["step"]
    if not isinstance(user_id, str) or not user_id or len(user_id) > 128:
        raise TypeError("userId is a string")
    if not ids.is_valid_id(export_id, "exp"):
        raise TypeError("exportId is an export id")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 1_000_000:
        raise TypeError("step is a whole number")
    return user_id, export_id, step


# ---- what goes into the zip ---------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A cell that a spreadsheet will not run: text starting with = + - @ tab or CR gets a leading '."""
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_name(name: str | None, limit: int = 40) -> str:
    """A folder name any OS and unzip tool accepts: ASCII letters, digits, `.`, `_`, `-`; no leading
    dot, no path separators, no reserved device names; never empty."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:limit].rstrip("-._")
    if text.upper().split(".")[0] in {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                                      *(f"LPT{i}" for i in range(10))}:
        text = f"_{text}"
    return text or "avatar"


def folder_of(avatar: "AvatarModel") -> str:
    return f"{safe_name(avatar.name)}-{avatar.id}"


def avatar_document(avatar: "AvatarModel", generation: Any | None) -> dict:
    from chalicelib.avatars import service as avatars
    from chalicelib.avatars.crops import crop_json

    persona = avatars.persona_fields(avatar)
    doc: dict[str, Any] = {
        "id": avatar.id,
        "name": avatar.name,
        "projectId": avatar.project_id,
        "persona": {"name": persona["personaName"], "age": persona["personaAge"],
                    "personality": persona["personaPersonality"], "background": persona["personaBackground"]},
        "attributes": avatars.attribute_fields(avatar),
        "crop": crop_json(avatar),
        "source": {"type": avatar.source_type, "presetId": avatar.preset_id, "generationId": avatar.generation_id,
                   "imageIndex": avatars.image_index(avatar), "sourceAvatarId": avatar.source_avatar_id},
        "image": {"width": int(avatar.width) if avatar.width is not None else None,
                  "height": int(avatar.height) if avatar.height is not None else None,
                  "format": avatar.format, "bytes": int(avatar.size_bytes) if avatar.size_bytes is not None else None},
        "usage": {"count": int(avatar.usage_count or 0), "lastUsedAt": avatar.last_used_at},
        "createdAt": avatar.created_at,
        "updatedAt": avatar.updated_at,
    }
    if avatar.generation_id or avatar.prompt:
        doc["generation"] = {
            "prompt": avatar.prompt,
            "seed": int(avatar.seed) if avatar.seed is not None else None,
            "model": getattr(generation, "model", None),
            "provider": getattr(generation, "provider", None),
            "safety": getattr(generation, "safety", None),
        }
    return doc


def _generation_of(avatar: "AvatarModel") -> Any | None:
    if not avatar.generation_id:
        return None
    from chalicelib.generation import requests

    try:
        return requests.get(avatar.user_id, avatar.generation_id)
    except NotFoundError:
        return None  # the job was removed; the avatar keeps its prompt and seed


def _history_pages(user_id: str, avatar_id: str) -> Iterator[tuple[list[dict], list[dict]]]:
    from chalicelib.usage import service as usage

    key = None
    while True:
        records, key, summary = usage.usage_history(user_id, avatar_id, limit=HISTORY_PAGE, start_key=key)
        yield records, summary
        if key is None:
            return


def usage_json_chunks(user_id: str, avatar_id: str) -> Iterator[bytes]:
    """`{"avatarId", "summary", "events": [...]}`, newest first, a page at a time."""
    pages = _history_pages(user_id, avatar_id)
    records, summary = next(pages)
    yield (json.dumps({"avatarId": avatar_id, "summary": summary}, ensure_ascii=False)[:-1]
           + ',"events":[').encode()
    first = True
    while True:
        if records:
            yield (("" if first else ",") + ",".join(json.dumps(r, ensure_ascii=False) for r in records)).encode()
            first = False
        try:
            records, _ = next(pages)
        except StopIteration:
            break
    yield b"]}"


CSV_COLUMNS = ("occurredAt", "recordedAt", "appId", "appName", "action", "referenceId", "referenceType",
               "eventId", "metadata")


def usage_csv_chunks(user_id: str, avatar_id: str) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for records, _ in _history_pages(user_id, avatar_id):
        for record in records:
            writer.writerow([csv_cell(record.get(column)) for column in CSV_COLUMNS])
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    if out.tell():
        yield out.getvalue().encode()


# ---- one step -----------------------------------------------------------------------------------

class _Writer:
    """The zip being written by one step: resumed from the last checkpoint, its parts going to S3."""

    def __init__(self, files: ExportFiles, export: "ExportModel", settings: "Settings", state: dict,
                 tail: bytes, *, force_zip64: bool = False) -> None:
        self.files = files
        self.key, self.upload_id = export.key, export.upload_id
        self.parts: list[dict] = [dict(p) for p in (export.parts or [])]
        self.buffer = PartBuffer(self._upload, settings.export_part_bytes, tail)
        self.zip = (ZipStream.resume(self.buffer.write, state["zip"]) if state.get("zip")
                    else ZipStream(self.buffer.write, force_zip64=force_zip64))
        self.checksums: list[dict] = list(state.get("files") or [])
        self.avatars: list[dict] = list(state.get("avatars") or [])
        self.missing: list[dict] = list(state.get("missing") or [])

    def _upload(self, data: bytes) -> None:
        number = len(self.parts) + 1
        self.parts.append({"n": number, "etag": self.files.upload_part(self.key, self.upload_id, number, data)})

    def state(self) -> dict:
        return {"zip": self.zip.state(), "files": self.checksums, "avatars": self.avatars, "missing": self.missing}

    def _add(self, path: str, chunks: Any, *, compress: bool, size_hint: int | None) -> None:
        entry = self.zip.add(path, chunks, compress=compress, size_hint=size_hint)
        self.checksums.append({"path": path, "bytes": entry["size"], "sha256": entry["sha256"]})

    def write_avatar(self, avatar: "AvatarModel") -> None:
        folder = folder_of(avatar)
        ext = (avatar.image_key or "").rsplit(".", 1)[-1].lower()
        for path, key in ((f"{folder}/original.{ext if ext in EXT else 'bin'}", avatar.image_key),
                          (f"{folder}/display.webp", avatar.display_key),
                          (f"{folder}/thumbnail.jpg", avatar.thumbnail_key)):
            if not key:
                continue
            opened = self.files.open(key)
            if opened is None:  # an avatar whose file went missing: the rest is still worth having
                self.missing.append({"path": path, "reason": "file_missing"})
                continue
            size, chunks = opened
            self._add(path, chunks, compress=False, size_hint=size)
        document = json.dumps(avatar_document(avatar, _generation_of(avatar)), ensure_ascii=False, indent=2).encode()
        self._add(f"{folder}/avatar.json", [document], compress=True, size_hint=len(document))
        self._add(f"{folder}/usage.json", usage_json_chunks(avatar.user_id, avatar.id), compress=True, size_hint=None)
        self._add(f"{folder}/usage.csv", usage_csv_chunks(avatar.user_id, avatar.id), compress=True, size_hint=None)
        self.avatars.append({"id": avatar.id, "name": avatar.name, "folder": folder})

    def finish(self, export: "ExportModel") -> int:
        manifest = json.dumps({
            "format": FORMAT, "exportId": export.id, "scope": export.scope, "targetId": export.target_id,
            "createdAt": export.created_at, "avatars": self.avatars, "files": self.checksums,
            "missing": self.missing, "checksum": "sha256 of each file's bytes as stored in this zip",
        }, ensure_ascii=False, indent=2).encode()
        self.zip.add_bytes("manifest.json", manifest)
        self.zip.finish()
        self.buffer.flush_last()
        self.files.complete(self.key, self.upload_id, self.parts)
        return self.zip.offset


def run_step(files: ExportFiles, settings: "Settings", user_id: str, export_id: str, step: int, *,
             remaining: Callable[[], float], hand_on: Callable[[int], None],
             force_zip64: bool = False) -> str:
    """One delivery of step `step`. Answers what happened: `completed`, `more` (handed on), `failed`,
    or, changing nothing, `nothing` (no such export), `ended`, `stale` (another step's message, or a
    run that lost its claim), `busy` (a live run holds it: its own message is still in flight)."""
    export = store.get(user_id, export_id, consistent=True)
    if export is None:
        return "nothing"
    if export.status not in store.ACTIVE:
        return "ended"
    if int(export.step or 0) != step:
        return "stale"
    now = clock.now()
    token = uuid.uuid4().hex
    taken_over = export.claim_token is not None  # a run of this step died (a commit removes the claim)
    lease_until = clock.epoch(now) + settings.export_lease_seconds
    if not store.claim(export, step, token, lease_until, now,
                       clock.iso(now + timedelta(seconds=settings.export_stall_seconds))):
        return "busy"
    key = zip_key(user_id, export_id)
    if taken_over and export.upload_id:
        size = files.size(key)
        if size is not None:  # that run completed the upload and died before recording it
            store.complete(export, step, token, done=int(export.total or 0), size=size, now=clock.now())
            return "completed"
    if not export.upload_id:
        upload_id = files.start_upload(key)
        if not store.record_upload(export, step, token, upload_id, key):
            files.abort(key, upload_id)
            return "stale"
        export.upload_id, export.key = upload_id, key
    state, tail = files.load_checkpoint(export.checkpoint) if export.checkpoint else ({}, b"")
    writer = _Writer(files, export, settings, state, tail, force_zip64=force_zip64)
    done, cursor = int(export.done or 0), export.cursor
    progress_at = time.monotonic()
    wrote = False
    for avatar in _avatars(export, cursor, settings):
        if avatar is None:  # the one avatar of an avatar export is gone or not ready
            _end_failed(files, export, token, "not_found", "The avatar is no longer there to export")
            return "failed"
        if wrote and remaining() < settings.export_step_reserve_seconds:
            return _hand_on(files, settings, export, step, token, writer, done, cursor, hand_on)
        writer.write_avatar(avatar)
        done, cursor, wrote = done + 1, avatar.id, True
        if time.monotonic() - progress_at >= PROGRESS_EVERY_SECONDS:
            store.progress(export, step, token, done)
            progress_at = time.monotonic()
    size = writer.finish(export)
    previous = export.checkpoint  # (a write answers the item as it now is: read what it had first)
    if not store.complete(export, step, token, done=done, size=size, now=clock.now()):
        return "stale"
    files.delete([previous])
    logger.info("export completed", extra={"exportId": export_id, "avatars": done, "bytes": size})
    return "completed"


def _avatars(export: "ExportModel", cursor: str | None, settings: "Settings") -> Iterator[Any]:
    """The avatars still to write, in order: the caller's own only (every read is under their key, or
    the shared project's home user's when a member asked)."""
    from chalicelib.avatars import service as avatars

    source = export.home or export.user_id
    if export.scope == "avatar":
        if int(export.done or 0) >= 1:
            return
        try:
            avatar = avatars.get_avatar(source, export.target_id, consistent=True)
        except NotFoundError:
            avatar = None
        yield avatar if avatar is not None and avatar.status == "ready" else None
        return
    start_key = store.avatar_start_key(source, export.target_id, cursor)
    while True:
        page, start_key = avatars.list_avatars(source, export.target_id, limit=settings.export_page_size,
                                               start_key=start_key,
                                               filters=avatars.AvatarFilters(status="ready"))
        yield from page
        if start_key is None:
            return


def _hand_on(files: ExportFiles, settings: "Settings", export: "ExportModel", step: int, token: str,
             writer: _Writer, done: int, cursor: str | None, hand_on: Callable[[int], None]) -> str:
    """Out of time between two avatars: the writer's state and the bytes not yet sent as a part go to
    a checkpoint, the chain moves to `step + 1`, and its message is sent. If the send fails the
    chain stalls, and the sweeper sends it again."""
    checkpoint = checkpoint_key(export.user_id, export.id, step + 1)
    files.save_checkpoint(checkpoint, writer.state(), writer.buffer.tail)
    now = clock.now()
    stall = settings.export_stall_seconds
    previous = export.checkpoint
    if not store.advance(export, step, token, parts=writer.parts, done=done, cursor=cursor,
                         bytes_written=writer.zip.offset, checkpoint=checkpoint, now=now,
                         deadline=clock.iso(now + timedelta(seconds=stall))):
        return "stale"
    if previous:
        files.delete([previous])
    hand_on(step + 1)
    return "more"


def _end_failed(files: ExportFiles, export: "ExportModel", token: str | None, code: str, message: str) -> bool:
    key, upload_id, checkpoint = export.key, export.upload_id, export.checkpoint
    if not store.fail(export, code, message, clock.now(), token=token):
        return False
    files.abort(key, upload_id)
    files.delete([checkpoint])
    return True


# ---- the sweeper's side -------------------------------------------------------------------------

def owns(pk: str, sk: str) -> bool:
    return store.is_export_key(pk, sk)


def sweep_item(files: ExportFiles, sqs: Any, settings: "Settings", pk: str, sk: str, now: datetime) -> str | None:
    """An export past its sweep deadline: `resent`, `failed`, `expired`, or None (nothing to do)."""
    export = store.read(pk, sk)
    if export is None:
        return None
    if export.status in store.ACTIVE:
        lease = int(export.lease_until or 0)
        if lease > clock.epoch(now):
            store.postpone(export, clock.iso(datetime.fromtimestamp(lease + 1, tz=now.tzinfo)))
            return None
        if int(export.resends or 0) < MAX_RESENDS:
            step = int(export.step or 0)
            if store.resend(export, now, clock.iso(now + timedelta(seconds=settings.export_stall_seconds))):
                send_step(sqs, settings.export_queue_url, export.user_id, export.id, step + 1)
                return "resent"
            return None
        return "failed" if _end_failed(files, export, None, "timed_out", "The export stalled and was stopped") else None
    if export.status in store.ENDED and export.expires_at <= clock.iso(now):
        files.abort(export.key, export.upload_id)
        files.delete([export.key, export.checkpoint])
        if store.expire(export, now, clock.epoch(now) + ITEM_TTL_DAYS * 86400):
            return "expired"
    return None
