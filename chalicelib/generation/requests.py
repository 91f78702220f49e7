"""Starting generation work for the API: a request becomes pending jobs and their messages.

    start()        one job: the content policy, the quota, idempotency and the record in one transaction
    start_many()   several jobs (variations) all or nothing: one transaction for every job and the quota
    retry()        failed → pending, charged again          cancel()  pending → cancelled, refunded
    get(), list_for_project()

A job's images are charged to the day it starts; `quotaDay` records that day so what is given back
later (chalicelib.generation.quota) goes to the same one.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import clock, ids
from chalicelib.aws.db import Transaction, TransactionCancelled
from chalicelib.errors import ConflictError, DependencyError, NotFoundError, ValidationError
from chalicelib.generation import jobs, quota, store
from chalicelib.generation.spec import images_of, job_message, request_hash
from chalicelib.projects import store as project_store
from chalicelib.teams import store as team_store
from chalicelib.observability import logger

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import GenerationModel
    from chalicelib.config import Settings

IDEMPOTENCY_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Started:
    generation: "GenerationModel"
    created: bool  # False: an Idempotency-Key replay returned the earlier generation


@dataclass(frozen=True)
class JobRequest:
    """One job to start: the validated fields (prompt, name, persona, attributes, size, seed, …)."""
    fields: dict
    source_type: str = "text_to_image"
    idempotency_key: str | None = None


def enforce_policy(fields: dict, language: str = "en") -> None:
    """The content policy on every word of the request: 400 `prompt_rejected`, said in `language`."""
    from chalicelib.generation import content_policy

    content_policy.enforce(fields, language)


def _queue_deadline(settings: "Settings", now) -> str:
    """A pending job is looked at again once it has waited GENERATION_MAX_QUEUE_SECONDS."""
    return clock.iso(now + timedelta(seconds=settings.generation_max_queue_seconds))


def _name(base: str, index: int) -> str:
    return base if index == 0 else f"{base}{index}"


def start(connection: Any, sqs: Any, settings: "Settings", user_id: str, project_id: str, fields: dict, *,
          idempotency_key: str | None = None, source_type: str = "text_to_image", language: str = "en",
          payer: str | None = None) -> Started:
    """Record a pending generation and queue its job. With an Idempotency-Key the same request (to the
    same project) returns the same generation; the key reused for a different request is a 409."""
    return start_many(connection, sqs, settings, user_id, project_id,
                      [JobRequest(fields, source_type, idempotency_key)], language=language, payer=payer)[0]


def start_many(connection: Any, sqs: Any, settings: "Settings", user_id: str, project_id: str,
               requests: list[JobRequest], *, language: str = "en", payer: str | None = None) -> list[Started]:
    """Start every job or none: the policy on all of them first, then one transaction holding every
    job, its idempotency key, the project check and the quota for all their images (a 429 or 409
    means nothing started). A replay of the first key returns the earlier jobs.

    `user_id` is the project's home (the jobs and their avatars live there); `payer` (a member of a
    shared project; default: the home user) is charged the quota and the active jobs and keeps the
    Idempotency-Keys, which are theirs."""
    payer = payer or user_id
    from chalicelib.generation.prompts import build_prompt

    for request in requests:
        enforce_policy(request.fields, language)
    digests = [request_hash({**r.fields, "projectId": project_id, "sourceType": r.source_type}) for r in requests]
    earlier = _replay_all(payer, requests, digests, home=user_id)
    if earlier is not None:
        return earlier
    now = clock.now()
    deadline = _queue_deadline(settings, now)
    made: list["GenerationModel"] = []
    for request in requests:
        fields = request.fields
        if fields.get("seed") is None:  # chosen here so the avatar keeps it (after hashing: replays match)
            fields = {**fields, "seed": secrets.randbelow(2**31)}
        built = build_prompt(fields)
        made.append(store.new(
            user_id, project_id, ids.new_id("gen"), deadline=deadline, status="pending", stage="queued", progress=0,
            attempts=0,
            request={**fields, "sourceType": request.source_type}, prompt=built.prompt,
            negative_prompt=built.negative_prompt, idempotency_key=request.idempotency_key,
            quota_day=clock.day_key(now), created_at=clock.iso(now), updated_at=clock.iso(now),
            queued_at=clock.iso(now), **({"started_by": payer} if payer != user_id else {})))
    try:
        with Transaction(connection) as tx:
            project_store.check_exists(tx, user_id, project_id)
            for i, (request, generation) in enumerate(zip(requests, made)):
                store.create(tx, generation, name=_name("generation", i))
                team_store.add_item_home(tx, "generation", generation.id, user_id, project_id, started_by=payer,
                                         name=_name("home", i))
                if request.idempotency_key:
                    store.remember_key(tx, payer, request.idempotency_key, generation_id=generation.id,
                                       request_hash=digests[i], created_at=clock.iso(now),
                                       ttl=clock.epoch(now) + IDEMPOTENCY_TTL_SECONDS, name=_name("idempotency", i))
            quota.charge(tx, payer, settings, now, images=sum(images_of(r.fields) for r in requests),
                         jobs=len(requests))
    except TransactionCancelled as cancelled:
        if any(cancelled.failed(_name("idempotency", i)) for i in range(len(requests))):
            # A concurrent request with the same keys won: answer what it started (or 409 if it differs).
            earlier = _replay_all(payer, requests, digests, home=user_id)
            if earlier is not None:
                return earlier
        if cancelled.failed("project"):
            raise NotFoundError("Project not found", details={"projectId": project_id}) from None
        quota.raise_if_over(cancelled, settings)
        if cancelled.conflict:
            raise DependencyError("The generation could not be started; please try again") from None
        raise
    _enqueue(connection, sqs, settings, made)
    return [Started(g, created=True) for g in made]


def _replay_all(user_id: str, requests: list[JobRequest], digests: list[str], *,
                home: str) -> list[Started] | None:
    """The earlier jobs of these keys (the payer's), when the first key was used (they were started
    together); the jobs themselves are in the `home` partition."""
    if not requests[0].idempotency_key:
        return None
    found = []
    for request, digest in zip(requests, digests):
        earlier = _replay(user_id, request.idempotency_key or "", digest, home) if request.idempotency_key else None
        if earlier is None:
            return None if not found else found
        found.append(Started(earlier, created=False))
    return found


def _replay(user_id: str, key: str, digest: str, home: str) -> "GenerationModel | None":
    idem = store.key(user_id, key)
    if idem is None:
        return None
    if idem.request_hash != digest:
        raise ConflictError("This Idempotency-Key was used for a different request", code="idempotency_key_reused",
                            details={"idempotencyKey": key})
    return store.get(home, idem.generation_id, consistent=True)


def _enqueue(connection: Any, sqs: Any, settings: "Settings", generations: list["GenerationModel"]) -> None:
    """Send the jobs' messages (one call); a job whose message could not be sent is failed at once
    and its images given back (never pending without a message)."""
    from botocore.exceptions import BotoCoreError, ClientError

    entries = [{"Id": str(i), "MessageBody": job_message(g.user_id, g.id)} for i, g in enumerate(generations)]
    try:
        failed = {int(f["Id"]) for f in sqs.send_message_batch(QueueUrl=settings.generation_queue_url,
                                                               Entries=entries).get("Failed", [])}
    except (BotoCoreError, ClientError) as exc:
        logger.error("generation not queued", extra={"error": str(exc)[:300]})
        failed = set(range(len(generations)))
    for i in sorted(failed):
        jobs.finish(connection, generations[i], "failed", from_statuses=("pending",), error_code="queue_failed",
                    error_message="The job could not be queued; please retry", refund_open=True)
    if failed:
        raise DependencyError("The generation could not be queued; please try again.",
                              details={"generationIds": [generations[i].id for i in sorted(failed)]})


# ---- reads and user actions -------------------------------------------------------------------

def get(user_id: str, generation_id: str, *, consistent: bool = False) -> "GenerationModel":
    generation = store.get(user_id, generation_id, consistent=consistent)
    if generation is None:
        raise NotFoundError("Generation not found", details={"generationId": generation_id})
    return generation


def list_for_project(user_id: str, project_id: str, *, active_only: bool, limit: int,
                     start_key: dict | None) -> tuple[list["GenerationModel"], dict | None]:
    """One Query: the sparse ACTIVE index for `status=active`, the project's items index otherwise."""
    if active_only:
        return store.list_active(user_id, project_id, limit=limit, start_key=start_key)
    return store.list_for_project(user_id, project_id, limit=limit, start_key=start_key)


def cancel(connection: Any, user_id: str, generation_id: str) -> "GenerationModel":
    generation = get(user_id, generation_id, consistent=True)
    if not jobs.cancel(connection, generation):
        current = get(user_id, generation_id, consistent=True)
        raise ConflictError(f"Only a pending generation can be cancelled; this one is {current.status}",
                            code="invalid_state", details={"status": current.status})
    return get(user_id, generation_id, consistent=True)


def retry(connection: Any, sqs: Any, settings: "Settings", user_id: str, generation_id: str, *,
          payer: str | None = None) -> "GenerationModel":
    """failed → pending, charged again (what the failed run gave back, it takes again) to `payer`, who
    starts the work this time (a member of a shared project; default the home user)."""
    payer = payer or user_id
    generation = get(user_id, generation_id, consistent=True)
    if generation.status != "failed":
        raise ConflictError(f"Only a failed generation can be retried; this one is {generation.status}",
                            code="invalid_state", details={"status": generation.status})
    now = clock.now()
    deadline = _queue_deadline(settings, now)
    try:
        with Transaction(connection) as tx:
            jobs.requeue(tx, generation, now, deadline, started_by=payer)
            quota.charge(tx, payer, settings, now,
                         images=images_of(generation.request.as_dict() if generation.request is not None else {}))
    except TransactionCancelled as cancelled:
        if cancelled.failed("generation"):
            current = get(user_id, generation_id, consistent=True)
            raise ConflictError(f"Only a failed generation can be retried; this one is {current.status}",
                                code="invalid_state", details={"status": current.status}) from None
        quota.raise_if_over(cancelled, settings)
        if cancelled.conflict:
            raise DependencyError("The generation could not be retried; please try again") from None
        raise
    generation = get(user_id, generation_id, consistent=True)
    _enqueue(connection, sqs, settings, [generation])
    return generation
