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

import contextlib
import hashlib
import json
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import avatars, clock, ids
from chalicelib.db import Transaction, TransactionCancelled, condition_failed, query_page
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
    sweep_pk,
    sweep_sk,
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


def _quota_actions(tx: Transaction, user_id: str, settings: "Settings", now) -> None:
    """Daily count and active count, each conditional on its limit (operations "daily" and "active")."""
    day = UserDayModel(user_pk(user_id), clock.day_key(now))
    tx.update("daily", day, actions=[UserDayModel.generations.add(1), UserDayModel.ttl.set(clock.epoch(now) + 40 * 86400)],
              condition=UserDayModel.generations.does_not_exist()
              | (UserDayModel.generations < settings.generation_daily_limit))
    tx.update("active", UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.active_generations.add(1)],
              condition=UserStatsModel.active_generations.does_not_exist()
              | (UserStatsModel.active_generations < settings.generation_active_limit))


def _raise_quota(cancelled: TransactionCancelled, settings: "Settings") -> None:
    if cancelled.failed("daily"):
        raise QuotaExceededError(
            f"Daily generation limit reached ({settings.generation_daily_limit} per day)",
            retry_after=_seconds_to_midnight(), details={"limit": settings.generation_daily_limit, "kind": "daily"})
    if cancelled.failed("active"):
        raise QuotaExceededError(
            f"{settings.generation_active_limit} generations are running; wait for one to finish or cancel one",
            retry_after=ACTIVE_RETRY_AFTER_SECONDS, details={"limit": settings.generation_active_limit,
                                                             "kind": "active"})


def _deadline(settings: "Settings", now) -> str:
    return clock.iso(now + timedelta(seconds=settings.generation_deadline_seconds))


def start(connection: Any, sqs: Any, settings: "Settings", user_id: str, project_id: str, fields: dict, *,
          idempotency_key: str | None = None, source_type: str = "text_to_image") -> Started:
    """Record a pending generation and queue its job.

    `fields` is the validated request (prompt, name, persona, attributes, width, height, seed, and
    presetId for a preset). With an Idempotency-Key the same request (to the same project) returns the
    same generation; the key reused for a different request is a 409.
    """
    from chalicelib.prompts import build_prompt

    digest = request_hash({**fields, "projectId": project_id, "sourceType": source_type})
    if idempotency_key:
        earlier = _replay(user_id, idempotency_key, digest)
        if earlier is not None:
            return Started(earlier, created=False)
    if fields.get("seed") is None:  # chosen here so the avatar keeps it (after hashing: replays match)
        fields = {**fields, "seed": secrets.randbelow(2**31)}
    built = build_prompt(fields)
    now = clock.now()
    gid = ids.new_id("gen")
    pk = generation_pk(user_id, gid)
    deadline = _deadline(settings, now)
    generation = GenerationModel(
        pk, META, gsi1pk=project_items_pk(user_id, project_id), gsi1sk=f"G#{gid}",
        gsi2pk=project_active_pk(user_id, project_id), gsi2sk=f"G#{gid}",
        sweep_pk=sweep_pk(pk), sweep_sk=sweep_sk(deadline, pk), deadline=deadline,
        id=gid, user_id=user_id, project_id=project_id, status="pending", stage="queued", progress=0, attempts=0,
        request={**fields, "sourceType": source_type}, prompt=built.prompt, negative_prompt=built.negative_prompt,
        idempotency_key=idempotency_key, created_at=clock.iso(now), updated_at=clock.iso(now))
    try:
        with Transaction(connection) as tx:
            tx.condition_check("project", ProjectModel, user_pk(user_id), project_sk(project_id),
                               condition=ProjectModel.pk.exists())
            tx.save("generation", generation, condition=GenerationModel.pk.does_not_exist())
            _quota_actions(tx, user_id, settings, now)
            if idempotency_key:
                tx.save("idempotency", IdempotencyKeyModel(
                    user_pk(user_id), f"IDEM#{idempotency_key}", generation_id=gid, request_hash=digest,
                    created_at=clock.iso(now), ttl=clock.epoch(now) + IDEMPOTENCY_TTL_SECONDS),
                        condition=IdempotencyKeyModel.pk.does_not_exist())
    except TransactionCancelled as cancelled:
        if cancelled.failed("idempotency"):
            # A concurrent request with the same key won: answer what it started (or 409 if it differs).
            earlier = _replay(user_id, idempotency_key or "", digest)
            if earlier is not None:
                return Started(earlier, created=False)
        if cancelled.failed("project"):
            raise NotFoundError("Project not found", details={"projectId": project_id}) from None
        _raise_quota(cancelled, settings)
        if cancelled.conflict:
            raise DependencyError("The generation could not be started; please try again") from None
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
    deadline = _deadline(settings, now)
    try:
        with Transaction(connection) as tx:
            tx.update("generation", generation, actions=[
                GenerationModel.status.set("pending"), GenerationModel.stage.set("queued"),
                GenerationModel.progress.set(0), GenerationModel.attempts.set(0),
                GenerationModel.error_message.remove(), GenerationModel.completed_at.remove(),
                GenerationModel.claim_token.remove(), GenerationModel.lease_until.remove(),
                GenerationModel.deadline.set(deadline), GenerationModel.sweep_pk.set(sweep_pk(generation.pk)),
                GenerationModel.sweep_sk.set(sweep_sk(deadline, generation.pk)),
                GenerationModel.gsi2pk.set(project_active_pk(user_id, generation.project_id)),
                GenerationModel.gsi2sk.set(f"G#{generation.id}"), GenerationModel.updated_at.set(clock.iso(now)),
            ], condition=GenerationModel.status == "failed")
            _quota_actions(tx, user_id, settings, now)
    except TransactionCancelled as cancelled:
        if cancelled.failed("generation"):
            current = get(user_id, generation_id, consistent=True)
            raise ConflictError(f"Only a failed generation can be retried; this one is {current.status}",
                                code="invalid_state", details={"status": current.status}) from None
        _raise_quota(cancelled, settings)
        if cancelled.conflict:
            raise DependencyError("The generation could not be retried; please try again") from None
        raise
    generation = get(user_id, generation_id, consistent=True)
    _enqueue(connection, sqs, settings, generation)
    return generation


def _finish(connection: Any, generation: GenerationModel, status: str, *, from_statuses: tuple[str, ...],
            error_message: str | None, extra_actions: tuple = (), claim_token: str | None = None) -> bool:
    """A terminal transition: status + active-job counter in one transaction. False if the
    generation was no longer in `from_statuses` (someone else finished it), or is gone, or — with
    `claim_token` — is no longer owned by that run."""
    now = clock.now_iso()
    actions = [GenerationModel.status.set(status), GenerationModel.updated_at.set(now),
               GenerationModel.completed_at.set(now), GenerationModel.gsi2pk.remove(), GenerationModel.gsi2sk.remove(),
               GenerationModel.sweep_pk.remove(), GenerationModel.sweep_sk.remove(),
               GenerationModel.lease_until.remove(), *extra_actions]
    if error_message is not None:
        actions.append(GenerationModel.error_message.set(error_message[:500]))
    condition = GenerationModel.status.is_in(*from_statuses)
    if claim_token is not None:
        condition = condition & (GenerationModel.claim_token == claim_token)
    for _ in range(3):
        try:
            with Transaction(connection) as tx:
                tx.update("generation", generation, actions=actions, condition=condition)
                tx.update("stats", UserStatsModel(user_pk(generation.user_id)),
                          actions=[UserStatsModel.active_generations.add(-1)])
            return True
        except TransactionCancelled as cancelled:
            if cancelled.failed("generation"):
                return False
            if not cancelled.conflict:
                raise
    raise DependencyError("The generation could not be updated; please try again")


# ---- the worker ---------------------------------------------------------------------------------

class RetryLater(Exception):
    """The job failed in a way that may pass (or is held by another run): the handler returns the
    message to the queue after `delay` seconds (ChangeMessageVisibility) and reports it as a batch
    item failure."""

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


class Claim:
    """One run's ownership of a job: every write of the run is conditional on its token, so a run
    that lost the job (lease expired and taken over, cancelled, deleted) changes nothing."""

    def __init__(self, generation: GenerationModel, token: str, settings: "Settings") -> None:
        self.generation = generation
        self.token = token
        self.settings = settings

    @property
    def owned(self) -> Any:
        return (GenerationModel.status == "processing") & (GenerationModel.claim_token == self.token)

    def update(self, actions: list) -> bool:
        try:
            self.generation.update(actions=actions, condition=self.owned)
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def renew(self) -> bool:
        """The heartbeat: keep the lease while the run is alive."""
        lease = clock.epoch(clock.now()) + self.settings.generation_lease_seconds
        return self.update([GenerationModel.lease_until.set(lease)])

    def release(self) -> bool:
        """Hand the job back (pending, no owner) for the next delivery; False if it is no longer ours."""
        return self.update([GenerationModel.status.set("pending"), GenerationModel.stage.set("queued"),
                            GenerationModel.progress.set(0), GenerationModel.claim_token.remove(),
                            GenerationModel.lease_until.remove(), GenerationModel.updated_at.set(clock.now_iso())])

    def progress(self, stage: str) -> bool:
        return self.update([GenerationModel.stage.set(stage), GenerationModel.progress.set(PROGRESS[stage]),
                            GenerationModel.updated_at.set(clock.now_iso())])


def claim(generation: GenerationModel, settings: "Settings") -> Claim | None:
    """pending → processing with a fresh token and lease, attempts + 1. A job that is processing is
    taken over only once its lease has expired (its run crashed or timed out); None otherwise."""
    now = clock.now()
    token = secrets.token_hex(8)
    try:
        generation.update(actions=[
            GenerationModel.status.set("processing"), GenerationModel.stage.set("started"),
            GenerationModel.progress.set(PROGRESS["started"]), GenerationModel.attempts.add(1),
            GenerationModel.claim_token.set(token),
            GenerationModel.lease_until.set(clock.epoch(now) + settings.generation_lease_seconds),
            GenerationModel.started_at.set(clock.iso(now)), GenerationModel.updated_at.set(clock.iso(now)),
        ], condition=(GenerationModel.status == "pending")
            | ((GenerationModel.status == "processing")
               & (GenerationModel.lease_until.does_not_exist() | (GenerationModel.lease_until < clock.epoch(now)))))
    except UpdateError as exc:
        if condition_failed(exc):
            return None
        raise
    return Claim(generation, token, settings)


def run_job(connection: Any, storage: "Storage", settings: "Settings", provider: Any, user_id: str,
            generation_id: str, *, heartbeat: Callable[[Claim], Any] | None = None) -> str:
    """One delivery of a job. Returns what happened; raises RetryLater for a retryable failure.

    `heartbeat(claim)` returns a context manager that keeps the run's lease (and its message) alive
    while the run works.
    """
    log = {"generationId": generation_id, "userId": user_id}
    try:
        generation = GenerationModel.get(generation_pk(user_id, generation_id), META, consistent_read=True)
    except DoesNotExist:
        logger.warning("job for an unknown generation dropped", extra=log)
        return "skipped: unknown generation"
    if generation.status in TERMINAL:
        return f"skipped: already {generation.status}"
    job = claim(generation, settings)
    if job is None:
        # Another run holds the job (a duplicate delivery), or it finished meanwhile: never a second
        # provider call. While that run's lease lasts, this message comes back when the lease ends —
        # to find the job done, or to take it over if that run died.
        generation.refresh(consistent_read=True)
        remaining = int(generation.lease_until or 0) - clock.epoch(clock.now())
        if generation.status == "processing" and remaining > 0:
            raise RetryLater(remaining + 1, "held by another run")
        return "skipped: claimed by another run"
    written: list[str] = []
    try:
        with (heartbeat(job) if heartbeat else contextlib.nullcontext()):
            return _run_claimed(connection, storage, settings, provider, job, written, log)
    except RetryLater:
        raise
    except BaseException:
        # An unexpected failure (a dependency error, a bug): hand the job back at once rather than
        # make the next delivery wait out the lease. Files of this run go too — unless the job
        # completed after all (then the release finds it no longer ours, and they are the avatar's).
        try:
            if job.release():
                storage.delete(written)
        except Exception:  # noqa: BLE001 — the lease then hands it on; the sweeper removes stray files
            logger.exception("could not release the job", extra=log)
        raise


def _run_claimed(connection: Any, storage: "Storage", settings: "Settings", provider: Any, job: Claim,
                 written: list[str], log: dict) -> str:
    from chalicelib.providers import GenerationRequest, ProviderError

    generation = job.generation
    user_id, generation_id = generation.user_id, generation.id
    generation.refresh(consistent_read=True)
    attempt = int(generation.attempts or 1)
    avatar_id = avatar_id_for(generation_id)
    request = generation.request.as_dict() if generation.request is not None else {}

    job.progress("generating")
    try:
        image = provider.generate(GenerationRequest(
            prompt=generation.prompt, negative_prompt=generation.negative_prompt or "",
            width=int(request.get("width") or 768), height=int(request.get("height") or 1024),
            seed=int(request.get("seed") or 0), label=request.get("name") or ""))
    except ProviderError as exc:
        return _provider_failed(connection, settings, job, attempt, exc, log)
    if not job.progress("saving"):
        return "skipped: the job was taken from this run"
    from chalicelib import images

    try:
        processed = images.process_upload(image, max_pixels=settings.max_image_pixels, max_bytes=50 * 1024 * 1024,
                                          thumb_size=settings.thumbnail_size)
    except images.ImageRejectedError as exc:
        _finish(connection, generation, "failed", from_statuses=ACTIVE, claim_token=job.token,
                error_message=f"The image service returned an unusable image: {exc.reason}")
        return "failed: unusable image"
    # Keys carry the run's token: files of a run that loses the job are never the ones another run's
    # avatar points at, so they can be removed without looking.
    keys = (image_key(user_id, avatar_id, processed.info.format, version=job.token),
            thumbnail_key(user_id, avatar_id, version=job.token), display_key(user_id, avatar_id, version=job.token))
    written.extend(keys)
    storage.put(keys[0], processed.image, processed.image_content_type)
    storage.put(keys[1], processed.thumbnail, processed.thumbnail_content_type)
    storage.put(keys[2], processed.display, processed.display_content_type)
    outcome = _complete(connection, job, avatar_id, keys, processed.info, request)
    if outcome != "completed":
        storage.delete(list(keys))  # nothing points at them
    logger.info("generation " + outcome, extra={**log, "avatarId": avatar_id, "attempt": attempt})
    return outcome


def _provider_failed(connection: Any, settings: "Settings", job: Claim, attempt: int, exc: Any, log: dict) -> str:
    generation = job.generation
    logger.warning("provider failed", extra={**log, "attempt": attempt, "retryable": exc.retryable,
                                             "reason": exc.reason, "status": exc.status})
    if not exc.retryable:
        _finish(connection, generation, "failed", from_statuses=ACTIVE, claim_token=job.token,
                error_message=exc.reason)
        return "failed: " + exc.reason
    if attempt >= settings.generation_max_attempts:
        # Marked now, so the user sees why; the message still goes on to the DLQ (the record of it).
        _finish(connection, generation, "failed", from_statuses=ACTIVE, claim_token=job.token,
                error_message=f"{exc.reason} (gave up after {attempt} attempts)")
        raise RetryLater(0, exc.reason)
    delay = backoff_delay(settings, attempt, exc.retry_after)
    try:  # hand the job back: the next delivery claims it at once
        generation.update(actions=[
            GenerationModel.status.set("pending"), GenerationModel.stage.set("queued"),
            GenerationModel.progress.set(0), GenerationModel.updated_at.set(clock.now_iso()),
            GenerationModel.claim_token.remove(), GenerationModel.lease_until.remove(),
            GenerationModel.error_message.set(f"{exc.reason}; retrying in {delay} s "
                                              f"(attempt {attempt} of {settings.generation_max_attempts})"),
        ], condition=job.owned)
    except UpdateError as update_exc:
        if not condition_failed(update_exc):
            raise
    raise RetryLater(delay, exc.reason)


def _complete(connection: Any, job: Claim, avatar_id: str, keys: tuple[str, ...], info: Any, request: dict) -> str:
    """Avatar (ready) + project count + stats + generation completed: one transaction, by the owner only."""
    generation = job.generation
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
        with Transaction(connection) as tx:
            tx.update("generation", generation, actions=[
                GenerationModel.status.set("completed"), GenerationModel.stage.set("done"),
                GenerationModel.progress.set(100), GenerationModel.avatar_id.set(avatar_id),
                GenerationModel.error_message.remove(), GenerationModel.gsi2pk.remove(),
                GenerationModel.gsi2sk.remove(), GenerationModel.sweep_pk.remove(), GenerationModel.sweep_sk.remove(),
                GenerationModel.lease_until.remove(), GenerationModel.completed_at.set(clock.iso(now)),
                GenerationModel.updated_at.set(clock.iso(now)),
            ], condition=job.owned)
            tx.save("avatar", avatar, condition=AvatarModel.pk.does_not_exist())
            avatars.count_new_avatar(tx, avatar, now, stats_actions=(UserStatsModel.active_generations.add(-1),))
    except TransactionCancelled as cancelled:
        if cancelled.failed("generation") or cancelled.failed("avatar"):
            return "skipped: the job was taken from this run"
        if cancelled.failed("project"):
            _finish(connection, generation, "failed", from_statuses=ACTIVE, claim_token=job.token,
                    error_message="The project was deleted while the avatar was being generated")
            return "project gone"
        raise
    return "completed"


def dead_letter(connection: Any, user_id: str, generation_id: str) -> str:
    """A job message reached the DLQ: make sure its generation is not left active. Every write is
    conditional on the generation still existing: a purge may have removed it."""
    try:
        generation = GenerationModel.get(generation_pk(user_id, generation_id), META, consistent_read=True)
    except DoesNotExist:
        return "skipped: unknown generation"
    marker = (GenerationModel.dead_lettered_at.set(clock.now_iso()),)

    def mark() -> None:
        try:
            generation.update(actions=list(marker), condition=GenerationModel.pk.exists())
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    if generation.status in TERMINAL:
        mark()
        return f"recorded: already {generation.status}"
    if generation.status == "processing" and int(generation.lease_until or 0) > clock.epoch(clock.now()):
        # A duplicate of a job that a live run holds: that run finishes it (or the sweeper, at its deadline).
        mark()
        return "recorded: held by a live run"
    attempts = int(generation.attempts or 0)
    reason = generation.error_message or "The job kept failing"
    if not _finish(connection, generation, "failed", from_statuses=ACTIVE, extra_actions=marker,
                   error_message=f"{reason.split('; retrying')[0]} (gave up after {attempts} attempts)"):
        mark()  # finished meanwhile by the last attempt (or purged: then nothing is written)
    return "failed"


def expire(connection: Any, generation: GenerationModel) -> bool:
    """The sweeper: an active job past its deadline ends `failed`, whoever holds it."""
    return _finish(connection, generation, "failed", from_statuses=ACTIVE,
                   error_message="The generation did not finish in time; please retry")


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
