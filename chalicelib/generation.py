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
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import avatars, clock, ids
from chalicelib.aws.db import Transaction, TransactionCancelled, condition_failed, query_page
from chalicelib.errors import ConflictError, DependencyError, NotFoundError, QuotaExceededError, ValidationError
from chalicelib.aws.models import (
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
from chalicelib.aws.storage import display_key, image_key, thumbnail_key

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import Settings
    from chalicelib.aws.storage import Storage

ACTIVE = ("pending", "processing")
TERMINAL = ("completed", "failed", "cancelled")
PROGRESS = {"queued": 0, "started": 10, "generating": 30, "saving": 80, "done": 100}
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
ACTIVE_RETRY_AFTER_SECONDS = 30


# ---- JSON ---------------------------------------------------------------------------------------

def to_json(gen: GenerationModel, avatar: dict | None = None, *, avatars_json: list[dict] | None = None,
            queue_position: int | None = None) -> dict:
    request = dict(gen.request.as_dict()) if gen.request is not None else {}
    listed = avatars_json if avatars_json is not None else ([avatar] if avatar else [])
    return {
        "id": gen.id, "projectId": gen.project_id, "status": gen.status, "stage": gen.stage,
        "progress": int(gen.progress or 0), "attempts": int(gen.attempts or 0), "errorMessage": gen.error_message,
        "errorCode": gen.error_code, "prompt": gen.prompt, "negativePrompt": gen.negative_prompt, "request": request,
        "avatarId": gen.avatar_id, "avatar": avatar if avatar is not None else (listed[0] if listed else None),
        "avatars": listed, "avatarIds": list(gen.avatar_ids or ([gen.avatar_id] if gen.avatar_id else [])),
        "numImages": images_of(request), "imagesMade": int(gen.images_made or 0),
        "imagesFailed": int(gen.images_failed or 0),
        "failures": [dict(f.as_dict() if hasattr(f, "as_dict") else f) for f in (gen.failures or [])],
        "safety": gen.safety, "model": gen.model, "provider": gen.provider, "presetId": request.get("presetId"),
        "createdAt": gen.created_at, "updatedAt": gen.updated_at, "queuedAt": gen.queued_at or gen.created_at,
        "startedAt": gen.started_at, "completedAt": gen.completed_at, "deadLetteredAt": gen.dead_lettered_at,
        "queuePosition": queue_position if gen.status == "pending" else None, "metrics": metrics_of(gen),
    }


def _ms_between(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    return max(0, int(round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000)))


def metrics_of(gen: GenerationModel) -> dict:
    """queueMs: queued → first start; providerMs: time in the image service (and safety check) of the
    run that finished it; totalMs: queued → finished."""
    queued = gen.queued_at or gen.created_at
    return {"queueMs": _ms_between(queued, gen.started_at),
            "providerMs": int(gen.provider_ms) if gen.provider_ms is not None else None,
            "totalMs": _ms_between(queued, gen.completed_at), "attempts": int(gen.attempts or 0)}


def images_of(request: dict) -> int:
    """How many images the job makes (1–4; requests from before issue 19 make one)."""
    try:
        return min(4, max(1, int(request.get("numImages") or 1)))
    except (TypeError, ValueError):
        return 1


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def avatar_id_for(generation_id: str, index: int = 0) -> str:
    """The avatar id of the job's image `index`, derived so every delivery of the job names the same
    avatars. Image 0 keeps the generation's own id body (as before issue 19); the others keep its time
    part (so they sort with it) and take the rest from a hash of (generation id, index)."""
    body = generation_id.split("_", 1)[1]
    if index == 0:
        return "ava_" + body
    digest = int.from_bytes(hashlib.sha256(f"{generation_id}#{index}".encode()).digest()[:10], "big")
    tail = "".join(_CROCKFORD[(digest >> (5 * i)) & 31] for i in range(16))
    return "ava_" + body[:10] + tail


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


def _quota_actions(tx: Transaction, user_id: str, settings: "Settings", now, images: int = 1) -> None:
    """Daily count and active count, each conditional on its limit (operations "daily" and "active").

    The daily count is of images (a job of N images adds N, and needs N left); the active count is
    of jobs (each job is one worker run however many images it makes)."""
    limit = settings.generation_daily_limit
    if images > limit:
        raise QuotaExceededError(
            f"Daily generation limit is {limit} images; this request asks for {images}",
            retry_after=_seconds_to_midnight(), details={"limit": limit, "kind": "daily", "images": images})
    day = UserDayModel(user_pk(user_id), clock.day_key(now))
    tx.update("daily", day, actions=[UserDayModel.generations.add(images),
                                     UserDayModel.ttl.set(clock.epoch(now) + 40 * 86400)],
              condition=UserDayModel.generations.does_not_exist()
              | (UserDayModel.generations < limit - images + 1))
    tx.update("active", UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.active_generations.add(1)],
              condition=UserStatsModel.active_generations.does_not_exist()
              | (UserStatsModel.active_generations < settings.generation_active_limit))


def _raise_quota(cancelled: TransactionCancelled, settings: "Settings") -> None:
    if cancelled.failed("daily"):
        raise QuotaExceededError(
            f"Daily generation limit reached ({settings.generation_daily_limit} images per day)",
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

    enforce_policy(fields)
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
        idempotency_key=idempotency_key, created_at=clock.iso(now), updated_at=clock.iso(now),
        queued_at=clock.iso(now))
    try:
        with Transaction(connection) as tx:
            tx.condition_check("project", ProjectModel, user_pk(user_id), project_sk(project_id),
                               condition=ProjectModel.pk.exists())
            tx.save("generation", generation, condition=GenerationModel.pk.does_not_exist())
            _quota_actions(tx, user_id, settings, now, images_of(fields))
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


def enforce_policy(fields: dict, language: str = "en") -> None:
    """The content policy (docs/content-policy.md) on every word of the request: 400 `prompt_rejected`."""
    from chalicelib import content_policy

    content_policy.enforce(fields, language)


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
        _finish(connection, generation, "failed", from_statuses=("pending",), error_code="queue_failed",
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
                GenerationModel.error_code.remove(), GenerationModel.images_made.remove(),
                GenerationModel.images_failed.remove(), GenerationModel.failures.remove(),
                GenerationModel.started_at.remove(), GenerationModel.provider_ms.remove(),
                GenerationModel.queued_at.set(clock.iso(now)),
                GenerationModel.deadline.set(deadline), GenerationModel.sweep_pk.set(sweep_pk(generation.pk)),
                GenerationModel.sweep_sk.set(sweep_sk(deadline, generation.pk)),
                GenerationModel.gsi2pk.set(project_active_pk(user_id, generation.project_id)),
                GenerationModel.gsi2sk.set(f"G#{generation.id}"), GenerationModel.updated_at.set(clock.iso(now)),
            ], condition=GenerationModel.status == "failed")
            _quota_actions(tx, user_id, settings, now,
                           images_of(generation.request.as_dict() if generation.request is not None else {}))
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
            error_message: str | None, extra_actions: tuple = (), claim_token: str | None = None,
            error_code: str | None = None) -> bool:
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
    if error_code is not None:
        actions.append(GenerationModel.error_code.set(error_code))
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
            GenerationModel.started_at.set(GenerationModel.started_at | clock.iso(now)),
            GenerationModel.updated_at.set(clock.iso(now)),
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


@dataclass
class _Image:
    """One image of the job that passed every check, held in memory until the job is saved."""
    index: int
    avatar_id: str
    processed: Any
    keys: tuple[str, str] = ("", "")


def _failure(index: int, code: str, message: str) -> dict:
    return {"index": index, "code": code, "message": message[:300]}


def _run_claimed(connection: Any, storage: "Storage", settings: "Settings", provider: Any, job: Claim,
                 written: list[str], log: dict) -> str:
    """Provider → Pillow → safety check for each of the job's images (seeds seed, seed+1, …), then the
    files and one completion transaction for all the images made. An image that fails for good (refused,
    unusable, unsafe) is counted and the others go on; a retryable failure before any image is made
    hands the whole job back (as with one image); after one is made, the job keeps what it has."""
    from chalicelib import safety
    from chalicelib.providers import ProviderError

    generation = job.generation
    user_id, generation_id = generation.user_id, generation.id
    generation.refresh(consistent_read=True)
    attempt = int(generation.attempts or 1)
    request = generation.request.as_dict() if generation.request is not None else {}
    count, seed = images_of(request), int(request.get("seed") or 0)
    checker = safety.checker_for(settings)
    source = None
    if request.get("sourceType") == "image_to_image":
        source = _source_image(storage, user_id, request.get("sourceAvatarId"))
        if source is None:
            _finish(connection, generation, "failed", from_statuses=ACTIVE, claim_token=job.token,
                    error_code="source_missing", error_message="The avatar to restyle was deleted or has no image")
            return "failed: source missing"
    made: list[_Image] = []
    failures: list[dict] = []
    provider_seconds = 0.0

    job.progress("generating")
    for index in range(count):
        began = time.monotonic()
        try:
            outcome = _make_image(settings, provider, checker, generation, request, seed + index, source)
        except ProviderError as exc:
            if exc.retryable and not made:
                return _provider_failed(connection, settings, job, attempt, exc, log,
                                        failures=failures if count > 1 else None)
            # For good, or after some images are made: the rest is counted, the made ones kept.
            failures += [_failure(i, exc.code, exc.reason) for i in (range(index, count) if exc.retryable
                                                                      else (index,))]
            if exc.retryable:
                break
            continue
        finally:
            provider_seconds += time.monotonic() - began
        if isinstance(outcome, dict):  # unusable, or withheld by the safety check: never stored
            failures.append({"index": index, **outcome})
        else:
            made.append(_Image(index, avatar_id_for(generation_id, index), outcome))
    summary = {"failures": failures, "provider_ms": int(provider_seconds * 1000),
               "safety": checker.state, "model": getattr(provider, "last_model", None),
               "provider": getattr(provider, "last_provider", None) or getattr(provider, "name", None)}
    if not made:
        first = failures[0]
        if _finish(connection, generation, "failed", from_statuses=ACTIVE, claim_token=job.token,
                   error_code=first["code"], error_message=first["message"],
                   extra_actions=_summary_actions(summary, 0)):
            _emit(generation, "failed", 0, summary)
        logger.info("generation failed", extra={**log, "errorCode": first["code"], "attempt": attempt})
        return "failed: " + first["message"]
    if not job.progress("saving"):
        return "skipped: the job was taken from this run"
    for item in made:
        # Keys carry the run's token: files of a run that loses the job are never the ones another run's
        # avatar points at, so they can be removed without looking.
        item.keys = (image_key(user_id, item.avatar_id, item.processed.info.format, version=job.token),
                     thumbnail_key(user_id, item.avatar_id, version=job.token),
                     display_key(user_id, item.avatar_id, version=job.token))
        written.extend(item.keys)
        storage.put(item.keys[0], item.processed.image, item.processed.image_content_type)
        storage.put(item.keys[1], item.processed.thumbnail, item.processed.thumbnail_content_type)
        storage.put(item.keys[2], item.processed.display, item.processed.display_content_type)
    outcome = _complete(connection, job, made, request, summary)
    if outcome != "completed":
        storage.delete(list(written))  # nothing points at them
    else:
        _emit(generation, "completed", len(made), summary)
    logger.info("generation " + outcome, extra={**log, "avatarIds": [m.avatar_id for m in made],
                                                "imagesFailed": len(failures), "attempt": attempt})
    return outcome


def _source_image(storage: "Storage", user_id: str, avatar_id: Any) -> bytes | None:
    """The image of the avatar a restyle starts from (the user's own: the key is under their id)."""
    if not isinstance(avatar_id, str):
        return None
    try:
        avatar = AvatarModel.get(avatar_pk(user_id, avatar_id), META, consistent_read=True)
    except DoesNotExist:
        return None
    if avatar.status != "ready" or not avatar.image_key:
        return None
    return storage.get_if_exists(avatar.image_key, 50 * 1024 * 1024)


def _make_image(settings: "Settings", provider: Any, checker: Any, generation: GenerationModel, request: dict,
                seed: int, source: bytes | None = None) -> Any:
    """One image: provider (text-to-image, or image-to-image from `source`) → Pillow → safety check.
    The processed image, or {code, message} when it cannot be published; ProviderError when the
    provider or the classifier failed."""
    from chalicelib import images
    from chalicelib.providers import GenerationRequest, RestyleRequest

    if checker.refusal is not None:  # production without a classifier: nothing unchecked is published
        raise checker.refusal
    common = dict(prompt=generation.prompt, negative_prompt=generation.negative_prompt or "",
                  width=int(request.get("width") or 768), height=int(request.get("height") or 1024),
                  seed=seed % 2**32, label=request.get("name") or "")
    if source is not None:
        image = provider.restyle(RestyleRequest(**common, image=source, strength=float(request.get("strength") or 0.6),
                                                style=str(request.get("style") or "")))
    else:
        image = provider.generate(GenerationRequest(**common))
    try:  # Pillow first: the classifier sees only what would be published
        processed = images.process_upload(image, max_pixels=settings.max_image_pixels, max_bytes=50 * 1024 * 1024,
                                          thumb_size=settings.thumbnail_size)
    except images.ImageRejectedError as exc:
        return {"code": "unusable_image", "message": f"The image service returned an unusable image: {exc.reason}"}
    if checker.flagged(processed.image):
        return {"code": "unsafe_output", "message": "The image was withheld: the safety check flagged it"}
    return processed


def _emit(generation: GenerationModel, status: str, made: int, summary: dict) -> None:
    from chalicelib import job_metrics

    job_metrics.job_finished(status=status, images_made=made, failures=summary["failures"],
                             provider_ms=summary.get("provider_ms"),
                             total_ms=_ms_between(generation.queued_at or generation.created_at, clock.now_iso()))


def _summary_actions(summary: dict, made: int) -> tuple:
    actions = [GenerationModel.images_made.set(made), GenerationModel.images_failed.set(len(summary["failures"])),
               GenerationModel.provider_ms.set(summary["provider_ms"])]
    actions.append(GenerationModel.failures.set(summary["failures"]) if summary["failures"]
                   else GenerationModel.failures.remove())
    for attribute, value in ((GenerationModel.safety, summary.get("safety")),
                             (GenerationModel.provider, summary.get("provider")),
                             (GenerationModel.model, summary.get("model"))):
        if value:
            actions.append(attribute.set(value))
    return tuple(actions)


def _provider_failed(connection: Any, settings: "Settings", job: Claim, attempt: int, exc: Any, log: dict,
                     failures: list[dict] | None = None) -> str:
    """A retryable failure before any image was made: the whole job goes back to the queue."""
    generation = job.generation
    logger.warning("provider failed", extra={**log, "attempt": attempt, "retryable": exc.retryable,
                                             "reason": exc.reason, "status": exc.status, "errorCode": exc.code})
    if attempt >= settings.generation_max_attempts:
        # Marked now, so the user sees why; the message still goes on to the DLQ (the record of it).
        count = images_of(generation.request.as_dict() if generation.request is not None else {})
        left = list(failures or []) + [_failure(i, exc.code, exc.reason)
                                       for i in range(len(failures or []), count)]
        _finish(connection, generation, "failed", from_statuses=ACTIVE, claim_token=job.token,
                error_code=exc.code, error_message=f"{exc.reason} (gave up after {attempt} attempts)",
                extra_actions=(GenerationModel.images_made.set(0), GenerationModel.images_failed.set(count),
                               GenerationModel.failures.set(left)))
        _emit(generation, "failed", 0, {"failures": left, "provider_ms": None})
        raise RetryLater(0, exc.reason)
    delay = backoff_delay(settings, attempt, exc.retry_after)
    try:  # hand the job back: the next delivery claims it at once
        generation.update(actions=[
            GenerationModel.status.set("pending"), GenerationModel.stage.set("queued"),
            GenerationModel.progress.set(0), GenerationModel.updated_at.set(clock.now_iso()),
            GenerationModel.claim_token.remove(), GenerationModel.lease_until.remove(),
            GenerationModel.error_code.set(exc.code),
            GenerationModel.error_message.set(f"{exc.reason}; retrying in {delay} s "
                                              f"(attempt {attempt} of {settings.generation_max_attempts})"),
        ], condition=job.owned)
    except UpdateError as update_exc:
        if not condition_failed(update_exc):
            raise
    raise RetryLater(delay, exc.reason)


def _complete(connection: Any, job: Claim, made: list[_Image], request: dict, summary: dict) -> str:
    """The avatars (ready) + project count + stats + generation completed: one transaction, by the owner only."""
    generation = job.generation
    now = clock.now()
    source_type = request.get("sourceType") or "text_to_image"
    seed = int(request.get("seed") or 0)
    new = [avatars.new_avatar(
        user_id=generation.user_id, project_id=generation.project_id, avatar_id=item.avatar_id,
        name=_avatar_name(request, item.index, len(made) + len(summary["failures"])), source_type=source_type,
        status="ready", fields=request, image_key=item.keys[0], thumbnail_key=item.keys[1], display_key=item.keys[2],
        width=item.processed.info.width, height=item.processed.info.height, format=item.processed.info.format,
        size_bytes=item.processed.info.bytes, prompt=generation.prompt, seed=(seed + item.index) % 2**32,
        generation_id=generation.id, preset_id=request.get("presetId"),
        source_avatar_id=request.get("sourceAvatarId")) for item in made]
    failures = summary["failures"]
    try:
        with Transaction(connection) as tx:
            tx.update("generation", generation, actions=[
                GenerationModel.status.set("completed"), GenerationModel.stage.set("done"),
                GenerationModel.progress.set(100), GenerationModel.avatar_id.set(made[0].avatar_id),
                GenerationModel.avatar_ids.set([m.avatar_id for m in made]),
                GenerationModel.error_message.set(f"{len(failures)} of {len(made) + len(failures)} images "
                                                  f"failed: {failures[0]['message']}"[:500])
                if failures else GenerationModel.error_message.remove(),
                GenerationModel.error_code.set(failures[0]["code"]) if failures else GenerationModel.error_code.remove(),
                GenerationModel.gsi2pk.remove(),
                GenerationModel.gsi2sk.remove(), GenerationModel.sweep_pk.remove(), GenerationModel.sweep_sk.remove(),
                GenerationModel.lease_until.remove(), GenerationModel.completed_at.set(clock.iso(now)),
                GenerationModel.updated_at.set(clock.iso(now)), *_summary_actions(summary, len(made)),
            ], condition=job.owned)
            for i, avatar in enumerate(new):
                tx.save("avatar" if i == 0 else f"avatar{i}", avatar, condition=AvatarModel.pk.does_not_exist())
            avatars.count_new_avatar(tx, new[0], now, stats_actions=(UserStatsModel.active_generations.add(-1),),
                                     count=len(new))
    except TransactionCancelled as cancelled:
        if cancelled.failed("generation") or any(cancelled.failed("avatar" if i == 0 else f"avatar{i}")
                                                 for i in range(len(new))):
            return "skipped: the job was taken from this run"
        if cancelled.failed("project"):
            _finish(connection, generation, "failed", from_statuses=ACTIVE, claim_token=job.token,
                    error_code="project_deleted",
                    error_message="The project was deleted while the avatar was being generated")
            return "project gone"
        raise
    return "completed"


def _avatar_name(request: dict, index: int, count: int) -> str:
    name = request.get("name") or "Generated avatar"
    return name if count == 1 else f"{name} ({index + 1})"[:100]


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
                   error_code=generation.error_code or "dead_lettered",
                   error_message=f"{reason.split('; retrying')[0]} (gave up after {attempts} attempts)"):
        mark()  # finished meanwhile by the last attempt (or purged: then nothing is written)
    return "failed"


def expire(connection: Any, generation: GenerationModel) -> bool:
    """The sweeper: an active job past its deadline ends `failed`, whoever holds it."""
    return _finish(connection, generation, "failed", from_statuses=ACTIVE, error_code="timed_out",
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
    made = avatars_json(user_id, generation, storage, url_expiry)
    return made[0] if made else None


def avatars_json(user_id: str, generation: GenerationModel, storage: "Storage", url_expiry: int) -> list[dict]:
    """The job's avatars still there, in image order: one BatchGet (at most 4 keys)."""
    if generation.status != "completed" or not generation.avatar_id:
        return []
    ids_ = list(generation.avatar_ids or [generation.avatar_id])
    found = {a.id: a for a in AvatarModel.batch_get([(avatar_pk(user_id, i), META) for i in ids_])}
    return [avatars.to_json(found[i], storage, url_expiry) for i in ids_ if i in found]  # deleted since: left out


def queue_position(sqs: Any, settings: "Settings", generation: GenerationModel) -> int | None:
    """Approximately how many jobs are waiting with this one (1 = next): the queue's
    ApproximateNumberOfMessages (one GetQueueAttributes call). SQS standard queues don't keep order,
    so this is the depth of the queue the job waits in, not an exact rank; None if unknown."""
    if generation.status != "pending" or not settings.generation_queue_url:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        attributes = sqs.get_queue_attributes(QueueUrl=settings.generation_queue_url,
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return max(1, int(attributes.get("ApproximateNumberOfMessages", 0)))
    except (BotoCoreError, ClientError, KeyError, ValueError):
        return None
