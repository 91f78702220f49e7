"""AI generation jobs: a generation record moves pending → processing → completed | failed
(or cancelled while pending); the generation queue carries `{userId, generationId}`.

    start()      API: quotas + idempotency + the record in one transaction, then the message
    get/list/cancel/retry
    run_job()    worker: claim → provider → store → avatar + completion in one transaction
    dead_letter() DLQ worker: whatever reached the DLQ ends `failed` with its reason

Every state change is a conditional write on `status`, and the active-job counter of the user
moves in the same transaction as the status, so it can never drift. The avatar made by a job has
an id derived from the generation id: a duplicate or late delivery cannot make a second one.
"""
from __future__ import annotations

import hashlib
import json
import math
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib import avatars, clock, ids
from chalicelib.db import condition_failed, query_page, transaction_reasons
from chalicelib.errors import ConflictError, DependencyError, NotFoundError, QuotaExceededError
from chalicelib.models import (
    META,
    AvatarModel,
    GenerationModel,
    IdempotencyKeyModel,
    ProjectModel,
    UserDayModel,
    UserStatsModel,
    avatar_pk,
    generation_pk,
    project_active_pk,
    project_items_pk,
    project_sk,
    user_pk,
)
from chalicelib.observability import logger
from chalicelib.storage import display_key, image_key, thumbnail_key

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import Settings
    from chalicelib.storage import Storage

ACTIVE = ("pending", "processing")
TERMINAL = ("completed", "failed", "cancelled")
PROGRESS = {"queued": 0, "started": 10, "generating": 30, "saving": 80, "done": 100}
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
ACTIVE_RETRY_AFTER_SECONDS = 30


# ---- JSON ---------------------------------------------------------------------------------------

def to_json(gen: GenerationModel, avatar: dict | None = None) -> dict:
    request = dict(gen.request.as_dict()) if gen.request is not None else {}
    return {
        "id": gen.id, "projectId": gen.project_id, "status": gen.status, "stage": gen.stage,
        "progress": int(gen.progress or 0), "attempts": int(gen.attempts or 0), "errorMessage": gen.error_message,
        "prompt": gen.prompt, "negativePrompt": gen.negative_prompt, "request": request,
        "avatarId": gen.avatar_id, "avatar": avatar, "presetId": request.get("presetId"),
        "createdAt": gen.created_at, "updatedAt": gen.updated_at, "startedAt": gen.started_at,
        "completedAt": gen.completed_at, "deadLetteredAt": gen.dead_lettered_at,
    }


def avatar_id_for(generation_id: str) -> str:
    """The job's avatar id, derived so every delivery of the job names the same avatar."""
    return "ava_" + generation_id.split("_", 1)[1]


def request_hash(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---- start ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Started:
    generation: GenerationModel
    created: bool  # False: an Idempotency-Key replay returned the earlier generation


def _seconds_to_midnight() -> int:
    now = clock.now()
    return max(1, 86400 - (now.hour * 3600 + now.minute * 60 + now.second))


def _quota_actions(tx: TransactWrite, user_id: str, settings: "Settings", now) -> None:
    """Daily count and active count, each conditional on its limit (two entries of the transaction)."""
    day = UserDayModel(user_pk(user_id), clock.day_key(now))
    tx.update(day, actions=[UserDayModel.generations.add(1), UserDayModel.ttl.set(clock.epoch(now) + 40 * 86400)],
              condition=UserDayModel.generations.does_not_exist()
              | (UserDayModel.generations < settings.generation_daily_limit))
    tx.update(UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.active_generations.add(1)],
              condition=UserStatsModel.active_generations.does_not_exist()
              | (UserStatsModel.active_generations < settings.generation_active_limit))


def _raise_quota(reasons: list[str], offset: int, settings: "Settings") -> None:
    if len(reasons) > offset and reasons[offset] == "ConditionalCheckFailed":
        raise QuotaExceededError(
            f"Daily generation limit reached ({settings.generation_daily_limit} per day)",
            retry_after=_seconds_to_midnight(), details={"limit": settings.generation_daily_limit, "kind": "daily"})
    if len(reasons) > offset + 1 and reasons[offset + 1] == "ConditionalCheckFailed":
        raise QuotaExceededError(
            f"Too many generations in progress (at most {settings.generation_active_limit})",
            retry_after=ACTIVE_RETRY_AFTER_SECONDS, details={"limit": settings.generation_active_limit,
                                                             "kind": "active"})


def start(connection: Any, sqs: Any, settings: "Settings", user_id: str, project_id: str, fields: dict, *,
          idempotency_key: str | None = None, source_type: str = "text_to_image") -> Started:
    """Record a pending generation and queue its job.

    `fields` is the validated request (prompt, name, persona, attributes, width, height, seed, and
    presetId for a preset). With an Idempotency-Key the same request returns the same generation;
    the key reused for a different request is a 409.
    """
    from chalicelib.prompts import build_prompt

    digest = request_hash(fields)
    if idempotency_key:
        earlier = _replay(user_id, idempotency_key, digest)
        if earlier is not None:
            return Started(earlier, created=False)
    if fields.get("seed") is None:  # chosen here so the avatar keeps it (after hashing: replays match)
        fields = {**fields, "seed": secrets.randbelow(2**31)}
    built = build_prompt(fields)
    now = clock.now()
    gid = ids.new_id("gen")
    generation = GenerationModel(
        generation_pk(user_id, gid), META, gsi1pk=project_items_pk(user_id, project_id), gsi1sk=f"G#{gid}",
        gsi2pk=project_active_pk(user_id, project_id), gsi2sk=f"G#{gid}",
        id=gid, user_id=user_id, project_id=project_id, status="pending", stage="queued", progress=0, attempts=0,
        request={**fields, "sourceType": source_type}, prompt=built.prompt, negative_prompt=built.negative_prompt,
        idempotency_key=idempotency_key, created_at=clock.iso(now), updated_at=clock.iso(now))
    try:
        with TransactWrite(connection=connection) as tx:
            tx.condition_check(ProjectModel, user_pk(user_id), project_sk(project_id),
                               condition=ProjectModel.pk.exists())
            tx.save(generation, condition=GenerationModel.pk.does_not_exist())
            _quota_actions(tx, user_id, settings, now)
            if idempotency_key:
                tx.save(IdempotencyKeyModel(user_pk(user_id), f"IDEM#{idempotency_key}", generation_id=gid,
                                            request_hash=digest, created_at=clock.iso(now),
                                            ttl=clock.epoch(now) + IDEMPOTENCY_TTL_SECONDS),
                        condition=IdempotencyKeyModel.pk.does_not_exist())
    except TransactWriteError as exc:
        reasons = transaction_reasons(exc)
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise NotFoundError("Project not found", details={"projectId": project_id}) from None
        _raise_quota(reasons, 2, settings)
        if idempotency_key and len(reasons) > 4 and reasons[4] == "ConditionalCheckFailed":
            earlier = _replay(user_id, idempotency_key, digest)  # a concurrent request with the same key won
            if earlier is not None:
                return Started(earlier, created=False)
        raise
    _enqueue(connection, sqs, settings, generation)
    return Started(generation, created=True)


def _replay(user_id: str, key: str, digest: str) -> GenerationModel | None:
    try:
        idem = IdempotencyKeyModel.get(user_pk(user_id), f"IDEM#{key}", consistent_read=True)
    except DoesNotExist:
        return None
    if idem.request_hash != digest:
        raise ConflictError("This Idempotency-Key was used for a different request", code="idempotency_key_reused",
                            details={"idempotencyKey": key})
    try:
        return GenerationModel.get(generation_pk(user_id, idem.generation_id), META, consistent_read=True)
    except DoesNotExist:
        return None


def _enqueue(connection: Any, sqs: Any, settings: "Settings", generation: GenerationModel) -> None:
    """Send the job; if that fails the generation is failed at once (never pending forever)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sqs.send_message(QueueUrl=settings.generation_queue_url,
                         MessageBody=json.dumps({"userId": generation.user_id, "generationId": generation.id}))
    except (BotoCoreError, ClientError) as exc:
        logger.error("generation not queued", extra={"generationId": generation.id, "error": str(exc)})
        _finish(connection, generation, "failed", from_statuses=("pending",),
                error_message="The job could not be queued; please retry")
        raise DependencyError("The generation could not be queued; nothing was started. Please try again.",
                              details={"generationId": generation.id}) from None


# ---- reads and user actions -------------------------------------------------------------------

def get(user_id: str, generation_id: str, *, consistent: bool = False) -> GenerationModel:
    try:
        return GenerationModel.get(generation_pk(user_id, generation_id), META, consistent_read=consistent)
    except DoesNotExist:
        raise NotFoundError("Generation not found", details={"generationId": generation_id}) from None


def list_for_project(user_id: str, project_id: str, *, active_only: bool, limit: int,
                     start_key: dict | None) -> tuple[list[GenerationModel], dict | None]:
    """One Query: the sparse ACTIVE index for `status=active`, the project's items index otherwise."""
    if active_only:
        return query_page(GenerationModel, project_active_pk(user_id, project_id), limit=limit, start_key=start_key,
                          index=GenerationModel.active_by_project)
    return query_page(GenerationModel, project_items_pk(user_id, project_id), limit=limit, start_key=start_key,
                      index=GenerationModel.by_project, range_key_condition=GenerationModel.gsi1sk.startswith("G#"))


def cancel(connection: Any, user_id: str, generation_id: str) -> GenerationModel:
    generation = get(user_id, generation_id, consistent=True)
    if not _finish(connection, generation, "cancelled", from_statuses=("pending",), error_message=None):
        current = get(user_id, generation_id, consistent=True)
        raise ConflictError(f"Only a pending generation can be cancelled; this one is {current.status}",
                            code="invalid_state", details={"status": current.status})
    return get(user_id, generation_id, consistent=True)


def retry(connection: Any, sqs: Any, settings: "Settings", user_id: str, generation_id: str) -> GenerationModel:
    """failed → pending, counted against the quotas again (the provider bills each attempt)."""
    generation = get(user_id, generation_id, consistent=True)
    if generation.status != "failed":
        raise ConflictError(f"Only a failed generation can be retried; this one is {generation.status}",
                            code="invalid_state", details={"status": generation.status})
    now = clock.now()
    try:
        with TransactWrite(connection=connection) as tx:
            tx.update(generation, actions=[
                GenerationModel.status.set("pending"), GenerationModel.stage.set("queued"),
                GenerationModel.progress.set(0), GenerationModel.attempts.set(0),
                GenerationModel.error_message.remove(), GenerationModel.completed_at.remove(),
                GenerationModel.gsi2pk.set(project_active_pk(user_id, generation.project_id)),
                GenerationModel.gsi2sk.set(f"G#{generation.id}"), GenerationModel.updated_at.set(clock.iso(now)),
            ], condition=GenerationModel.status == "failed")
            _quota_actions(tx, user_id, settings, now)
    except TransactWriteError as exc:
        reasons = transaction_reasons(exc)
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise ConflictError("The generation changed meanwhile", code="invalid_state") from None
        _raise_quota(reasons, 1, settings)
        raise
    generation = get(user_id, generation_id, consistent=True)
    _enqueue(connection, sqs, settings, generation)
    return generation


def _finish(connection: Any, generation: GenerationModel, status: str, *, from_statuses: tuple[str, ...],
            error_message: str | None, extra_actions: tuple = ()) -> bool:
    """A terminal transition: status + active-job counter in one transaction. False if the
    generation was no longer in `from_statuses` (someone else finished it)."""
    now = clock.now_iso()
    actions = [GenerationModel.status.set(status), GenerationModel.updated_at.set(now),
               GenerationModel.completed_at.set(now), GenerationModel.gsi2pk.remove(), GenerationModel.gsi2sk.remove(),
               *extra_actions]
    if error_message is not None:
        actions.append(GenerationModel.error_message.set(error_message[:500]))
    try:
        with TransactWrite(connection=connection) as tx:
            tx.update(generation, actions=actions, condition=GenerationModel.status.is_in(*from_statuses))
            tx.update(UserStatsModel(user_pk(generation.user_id)),
                      actions=[UserStatsModel.active_generations.add(-1)])
    except TransactWriteError as exc:
        if transaction_reasons(exc)[:1] == ["ConditionalCheckFailed"]:
            return False
        raise
    return True


# ---- the worker ---------------------------------------------------------------------------------

class RetryLater(Exception):
    """The job failed in a way that may pass: the handler returns the message to the queue after
    `delay` seconds (ChangeMessageVisibility) and reports it as a batch item failure."""

    def __init__(self, delay: int, reason: str):
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


def backoff_delay(settings: "Settings", attempt: int, retry_after: float | None = None) -> int:
    steps = settings.generation_backoff_seconds or (10.0,)
    delay = steps[min(max(attempt, 1) - 1, len(steps) - 1)]
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(43_200, max(0, math.ceil(delay)))  # SQS allows at most 12 hours


def _set_progress(generation: GenerationModel, stage: str) -> bool:
    try:
        generation.update(actions=[GenerationModel.stage.set(stage), GenerationModel.progress.set(PROGRESS[stage]),
                                   GenerationModel.updated_at.set(clock.now_iso())],
                          condition=GenerationModel.status == "processing")
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def _claim(generation: GenerationModel) -> bool:
    """pending (or processing, after a crash) → processing, attempts + 1."""
    now = clock.now_iso()
    try:
        generation.update(actions=[
            GenerationModel.status.set("processing"), GenerationModel.stage.set("started"),
            GenerationModel.progress.set(PROGRESS["started"]), GenerationModel.attempts.add(1),
            GenerationModel.started_at.set(now), GenerationModel.updated_at.set(now),
        ], condition=GenerationModel.status.is_in(*ACTIVE))
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def run_job(connection: Any, storage: "Storage", settings: "Settings", provider: Any, user_id: str,
            generation_id: str) -> str:
    """One delivery of a job. Returns what happened; raises RetryLater for a retryable failure."""
    from chalicelib.providers import GenerationRequest, ProviderError

    log = {"generationId": generation_id, "userId": user_id}
    try:
        generation = GenerationModel.get(generation_pk(user_id, generation_id), META, consistent_read=True)
    except DoesNotExist:
        logger.warning("job for an unknown generation dropped", extra=log)
        return "skipped: unknown generation"
    if generation.status in TERMINAL:
        return f"skipped: already {generation.status}"
    if not _claim(generation):
        return "skipped: changed meanwhile"
    generation.refresh(consistent_read=True)
    attempt = int(generation.attempts or 1)
    avatar_id = avatar_id_for(generation_id)
    request = generation.request.as_dict() if generation.request is not None else {}
    keys = (image_key(user_id, avatar_id, "PNG"), thumbnail_key(user_id, avatar_id))

    image = storage.get_if_exists(keys[0], 50 * 1024 * 1024)  # a crash after saving: no second provider call
    if image is None:
        _set_progress(generation, "generating")
        try:
            image = provider.generate(GenerationRequest(
                prompt=generation.prompt, negative_prompt=generation.negative_prompt or "",
                width=int(request.get("width") or 768), height=int(request.get("height") or 1024),
                seed=int(request.get("seed") or 0), label=request.get("name") or ""))
        except ProviderError as exc:
            return _provider_failed(connection, settings, generation, attempt, exc, log)
    _set_progress(generation, "saving")
    from chalicelib import images

    try:
        processed = images.process_upload(image, max_pixels=settings.max_image_pixels, max_bytes=50 * 1024 * 1024,
                                          thumb_size=settings.thumbnail_size)
    except images.ImageRejectedError as exc:
        _finish(connection, generation, "failed", from_statuses=ACTIVE,
                error_message=f"The image service returned an unusable image: {exc.reason}")
        return "failed: unusable image"
    keys = (image_key(user_id, avatar_id, processed.info.format), keys[1], display_key(user_id, avatar_id))
    storage.put(keys[0], processed.image, processed.image_content_type)
    storage.put(keys[1], processed.thumbnail, processed.thumbnail_content_type)
    storage.put(keys[2], processed.display, processed.display_content_type)
    outcome = _complete(connection, generation, avatar_id, keys, processed.info, request)
    if outcome == "project gone":
        storage.delete(list(keys))  # nothing points at them
    logger.info("generation " + outcome, extra={**log, "avatarId": avatar_id, "attempt": attempt})
    return outcome


def _provider_failed(connection: Any, settings: "Settings", generation: GenerationModel, attempt: int,
                     exc: Any, log: dict) -> str:
    logger.warning("provider failed", extra={**log, "attempt": attempt, "retryable": exc.retryable,
                                             "reason": exc.reason, "status": exc.status})
    if not exc.retryable:
        _finish(connection, generation, "failed", from_statuses=ACTIVE, error_message=exc.reason)
        return "failed: " + exc.reason
    if attempt >= settings.generation_max_attempts:
        # Marked now, so the user sees why; the message still goes on to the DLQ (the record of it).
        _finish(connection, generation, "failed", from_statuses=ACTIVE,
                error_message=f"{exc.reason} (gave up after {attempt} attempts)")
        raise RetryLater(0, exc.reason)
    delay = backoff_delay(settings, attempt, exc.retry_after)
    try:
        generation.update(actions=[
            GenerationModel.status.set("pending"), GenerationModel.stage.set("queued"),
            GenerationModel.progress.set(0), GenerationModel.updated_at.set(clock.now_iso()),
            GenerationModel.error_message.set(f"{exc.reason}; retrying in {delay} s "
                                              f"(attempt {attempt} of {settings.generation_max_attempts})"),
        ], condition=GenerationModel.status == "processing")
    except UpdateError as update_exc:
        if not condition_failed(update_exc):
            raise
    raise RetryLater(delay, exc.reason)


def _complete(connection: Any, generation: GenerationModel, avatar_id: str, keys: tuple[str, ...], info: Any,
              request: dict) -> str:
    """Avatar (ready) + project count + stats + generation completed: one transaction."""
    now = clock.now()
    source_type = request.get("sourceType") or "text_to_image"
    avatar = avatars.new_avatar(
        user_id=generation.user_id, project_id=generation.project_id, avatar_id=avatar_id,
        name=request.get("name") or "Generated avatar", source_type=source_type, status="ready", fields=request,
        image_key=keys[0], thumbnail_key=keys[1], width=info.width, height=info.height, format=info.format,
        display_key=keys[2],
        size_bytes=info.bytes, prompt=generation.prompt, seed=request.get("seed"), generation_id=generation.id,
        preset_id=request.get("presetId"))
    try:
        with TransactWrite(connection=connection) as tx:
            tx.update(generation, actions=[
                GenerationModel.status.set("completed"), GenerationModel.stage.set("done"),
                GenerationModel.progress.set(100), GenerationModel.avatar_id.set(avatar_id),
                GenerationModel.error_message.remove(), GenerationModel.gsi2pk.remove(),
                GenerationModel.gsi2sk.remove(), GenerationModel.completed_at.set(clock.iso(now)),
                GenerationModel.updated_at.set(clock.iso(now)),
            ], condition=GenerationModel.status == "processing")
            tx.save(avatar, condition=AvatarModel.pk.does_not_exist())
            avatars.count_new_avatar(tx, avatar, now, stats_actions=(UserStatsModel.active_generations.add(-1),))
    except TransactWriteError as exc:
        reasons = transaction_reasons(exc)
        if reasons[:1] == ["ConditionalCheckFailed"] or reasons[1:2] == ["ConditionalCheckFailed"]:
            return "skipped: completed by another delivery"
        if reasons[2:3] == ["ConditionalCheckFailed"]:
            _finish(connection, generation, "failed", from_statuses=ACTIVE,
                    error_message="The project was deleted while the avatar was being generated")
            return "project gone"
        raise
    return "completed"


def dead_letter(connection: Any, user_id: str, generation_id: str) -> str:
    """A job message reached the DLQ: make sure its generation is not left active."""
    try:
        generation = GenerationModel.get(generation_pk(user_id, generation_id), META, consistent_read=True)
    except DoesNotExist:
        return "skipped: unknown generation"
    marker = (GenerationModel.dead_lettered_at.set(clock.now_iso()),)
    if generation.status in TERMINAL:
        generation.update(actions=list(marker))
        return f"recorded: already {generation.status}"
    attempts = int(generation.attempts or 0)
    reason = generation.error_message or "The job kept failing"
    if not _finish(connection, generation, "failed", from_statuses=ACTIVE, extra_actions=marker,
                   error_message=f"{reason.split('; retrying')[0]} (gave up after {attempts} attempts)"):
        generation.update(actions=list(marker))  # finished meanwhile by the last attempt
    return "failed"


def parse_job(body: str) -> tuple[str, str]:
    """(userId, generationId) of a job message; ValueError when it is not one."""
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("not an object")
    user_id, generation_id = message.get("userId"), message.get("generationId")
    if not isinstance(user_id, str) or not user_id or not ids.is_valid_id(generation_id, "gen"):
        raise ValueError("userId and generationId are required")
    return user_id, generation_id


def avatar_json(user_id: str, generation: GenerationModel, storage: "Storage", url_expiry: int) -> dict | None:
    if generation.status != "completed" or not generation.avatar_id:
        return None
    try:
        return avatars.to_json(AvatarModel.get(avatar_pk(user_id, generation.avatar_id), META), storage, url_expiry)
    except DoesNotExist:
        return None  # the user deleted it since
