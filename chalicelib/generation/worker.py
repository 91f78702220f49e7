"""One delivery of a job message: claim the job, make its unfinished images, end or pass it on.

For each image still to do, in order: is there time for one more provider call (and the safety
check, and saving)? If not, the job is handed on through a new message, which uses up none of this
message's receives. Otherwise provider → Pillow → safety check, and the image is stored and recorded
at once, so no later run asks for it again. An image that fails for now is tried again on the next
attempt, after a backoff, while the others go on; one that fails for good ends failed. When every
image has ended, the job does (chalicelib.generation.jobs.settle).
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Callable

from chalicelib import clock

from chalicelib.avatars import service as avatars

from chalicelib.avatars import file_intents
from chalicelib.aws.storage import display_key, image_key, thumbnail_key
from chalicelib.errors import NotFoundError
from chalicelib.generation import jobs, store
from chalicelib.generation.spec import avatar_id_for
from chalicelib.observability import logger

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import GenerationModel
    from chalicelib.aws.storage import Storage
    from chalicelib.config import Settings

# Storing one image's three files and recording it, with room to spare.
SAVE_SECONDS = 10.0


class RetryLater(Exception):
    """The job comes back to this message after `delay` seconds: a transient failure (a new attempt,
    after a backoff) or a job held by another run (when that run's lease ends)."""

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


def image_seconds(settings: "Settings", *, classifier: bool) -> float:
    """The longest one image can take: the provider's timeout (none for the offline placeholders),
    the classifier's, and saving."""
    provider = 0.0 if settings.offline_generation else settings.flux_timeout_seconds
    return provider + (settings.safety_timeout_seconds if classifier else 0.0) + SAVE_SECONDS


def run_job(connection: Any, storage: "Storage", settings: "Settings", provider: Any, user_id: str,
            generation_id: str, *, remaining: Callable[[], float] = lambda: math.inf,
            hand_on: Callable[[], None] = lambda: None) -> str:
    """One delivery. Returns what happened; raises RetryLater when the message must come back.

    `remaining()`: seconds left in this invocation. `hand_on()`: sends a new message for the job."""
    log = {"generationId": generation_id, "userId": user_id}
    generation = store.get(user_id, generation_id, consistent=True)
    if generation is None:
        logger.warning("job for an unknown generation dropped", extra=log)
        return "skipped: unknown generation"
    if generation.status in jobs.TERMINAL:
        return f"skipped: already {generation.status}"
    job = jobs.claim(generation, settings)
    if job is None:
        # Held by another run, or moved on meanwhile: never a second provider call. The one rule —
        # take over iff leaseUntil <= now, else come back after leaseUntil - now + 1 s.
        if not store.refresh(generation):
            return "skipped: unknown generation"
        if generation.status in jobs.TERMINAL:
            return f"skipped: already {generation.status}"
        raise RetryLater(jobs.wait_seconds(generation.lease_until, clock.now()), "held by another run")
    if job.attempt > settings.generation_max_attempts:
        # Runs kept dying before they could end the job: give up as the last attempt would have.
        jobs.end_as_whole(connection, job.generation, generation.error_code or "worker_failed",
                          f"{(generation.error_message or 'The job kept failing').split('; retrying')[0]} "
                          f"(gave up after {job.attempt - 1} attempts)", claim_token=job.token)
        return "failed: attempts used up"
    written: list[str] = []
    try:
        return _run_claimed(connection, storage, settings, provider, job, written, log, remaining, hand_on)
    except jobs.Lost:
        storage.delete(written)  # nothing points at this run's files
        return "skipped: the job was taken from this run"
    except RetryLater:
        raise
    except Exception as exc:
        # An unexpected failure (a throttle, a dependency error, a bug): hand the job back at once
        # and let the message come back after a backoff, not the queue's 720 s. Files of the image
        # in hand go too; recorded images keep theirs. If the hand-back fails too, the lease ends
        # and the message's visibility brings it back.
        logger.exception("generation run failed", extra=log)
        try:
            abandoned = job.abandon()
            if abandoned:
                storage.delete(written)
        except Exception:  # noqa: BLE001 — the sweeper removes stray files
            logger.exception("could not release the job", extra=log)
            raise exc from None
        if not abandoned:
            return "skipped: the job was taken from this run"
        raise RetryLater(backoff_delay(settings, job.attempt), f"unexpected error: {type(exc).__name__}") from exc


def _run_claimed(connection: Any, storage: "Storage", settings: "Settings", provider: Any, job: jobs.Claim,
                 written: list[str], log: dict, remaining: Callable[[], float], hand_on: Callable[[], None]) -> str:
    from chalicelib.generation import safety
    from chalicelib.generation.providers import ProviderError

    generation = job.generation
    request = generation.request.as_dict() if generation.request is not None else {}
    seed = int(request.get("seed") or 0)
    checker = safety.checker_for(settings)
    source = None
    if request.get("sourceType") == "image_to_image":
        source = _source_image(storage, generation.user_id, request.get("sourceAvatarId"))
        if source is None:
            jobs.end_as_whole(connection, generation, "source_missing",
                              "The avatar to restyle was deleted or has no image", claim_token=job.token)
            return "failed: source missing"
    need = image_seconds(settings, classifier=isinstance(checker, safety.Checker))
    provider_seconds = 0.0
    for index, slot in enumerate(job.slots):
        if slot["state"] != "todo" or slot.get("failedIn") == job.attempt:
            continue  # ended, or failed for now in this attempt (a continuation waits for the retry)
        if remaining() < need:
            hand_on()  # first: if this run dies now, the new message finds the lease and waits for it
            job.hand_on()
            logger.info("generation handed on", extra={**log, "nextImage": index, "attempt": job.attempt})
            return "handed on"
        began = time.monotonic()
        try:
            outcome = _make_image(settings, provider, checker, generation, request, seed + index, source)
        except ProviderError as exc:
            job.note_failure(index, exc.code, exc.reason, for_good=not exc.retryable, retry_after=exc.retry_after)
            logger.warning("image failed", extra={**log, "index": index, "errorCode": exc.code,
                                                  "retryable": exc.retryable, "attempt": job.attempt})
            continue
        finally:
            provider_seconds += time.monotonic() - began
        if isinstance(outcome, dict):  # unusable, or withheld by the safety check: never stored
            job.note_failure(index, outcome["code"], outcome["message"], for_good=True)
            continue
        outcome_of_record = _store_and_record(connection, storage, job, index, outcome, request, written)
        if outcome_of_record == "project gone":
            jobs.end_as_whole(connection, generation, "project_deleted",
                              "The project was deleted while the avatar was being generated", claim_token=job.token)
            return "project gone"
    _record_summary(job, checker, provider, provider_seconds)
    transient = [s for s in job.slots if s["state"] == "todo" and s.get("failedIn") == job.attempt]
    if transient:
        if job.attempt < settings.generation_max_attempts:
            delay = backoff_delay(settings, job.attempt, max(int(s.get("retryAfter") or 0) for s in transient))
            first = transient[0]
            job.release(first["code"], f"{first['message']}; retrying in {delay} s "
                                       f"(attempt {job.attempt} of {settings.generation_max_attempts})")
            raise RetryLater(delay, first["message"])
        for slot in transient:  # attempts used up: what failed for now fails for good
            slot["state"] = "failed"
            slot["message"] = f"{slot.get('message')} (gave up after {job.attempt} attempts)"[:300]
    outcome = jobs.settle(connection, job)
    _emit(generation, outcome.split(":")[0], job.slots, int(provider_seconds * 1000))
    logger.info("generation " + outcome, extra={**log, "attempt": job.attempt})
    return outcome


def _store_and_record(connection: Any, storage: "Storage", job: jobs.Claim, index: int, processed: Any,
                      request: dict, written: list[str]) -> str:
    generation = job.generation
    user_id, avatar_id = generation.user_id, avatar_id_for(generation.id, index)
    # Keys carry the run's token: files of a run that loses the job are never the ones another run's
    # avatar points at, so they can be removed without looking.
    keys = (image_key(user_id, avatar_id, processed.info.format, version=job.token),
            thumbnail_key(user_id, avatar_id, version=job.token), display_key(user_id, avatar_id, version=job.token))
    written.extend(keys)
    file_intents.intend(list(keys))  # a run killed before its avatar is recorded leaves them to the sweeper
    storage.put(keys[0], processed.image, processed.image_content_type)
    storage.put(keys[1], processed.thumbnail, processed.thumbnail_content_type)
    storage.put(keys[2], processed.display, processed.display_content_type)
    seed = int(request.get("seed") or 0)
    avatar = avatars.new_avatar(
        user_id=user_id, project_id=generation.project_id, avatar_id=avatar_id,
        name=_avatar_name(request, index, len(job.slots)), source_type=request.get("sourceType") or "text_to_image",
        status="ready", fields=request, image_key=keys[0], thumbnail_key=keys[1], display_key=keys[2],
        width=processed.info.width, height=processed.info.height, format=processed.info.format,
        size_bytes=processed.info.bytes, prompt=generation.prompt, seed=(seed + index) % 2**32,
        generation_id=generation.id, preset_id=request.get("presetId"),
        # lineage (issue 29): a restyle's source, or the avatar a variation was asked of
        source_avatar_id=request.get("sourceAvatarId") or request.get("variationOf"))
    outcome = job.record_image(connection, index, avatar)
    if outcome == "recorded":
        written.clear()  # the avatar's files now
    else:
        storage.delete(list(written))
        written.clear()
    return outcome


def _record_summary(job: jobs.Claim, checker: Any, provider: Any, provider_seconds: float) -> None:
    """What the page shows of the run that ended the job: the classifier, the model, time in the provider."""
    job.record_summary(provider_ms=int(provider_seconds * 1000), safety=checker.state,
                       provider=getattr(provider, "last_provider", None) or getattr(provider, "name", None),
                       model=getattr(provider, "last_model", None))


def _avatar_name(request: dict, index: int, count: int) -> str:
    name = request.get("name") or "Generated avatar"
    return name if count == 1 else f"{name} ({index + 1})"[:100]


def _source_image(storage: "Storage", user_id: str, avatar_id: Any) -> bytes | None:
    """The image of the avatar a restyle starts from (the user's own: the key is under their id)."""
    if not isinstance(avatar_id, str):
        return None
    try:
        avatar = avatars.get_avatar(user_id, avatar_id, consistent=True)
    except NotFoundError:  # gone, or being deleted
        return None
    if avatar.status != "ready" or not avatar.image_key:
        return None
    return storage.get_if_exists(avatar.image_key, 50 * 1024 * 1024)


def _make_image(settings: "Settings", provider: Any, checker: Any, generation: "GenerationModel", request: dict,
                seed: int, source: bytes | None = None) -> Any:
    """One image: provider (text-to-image, or image-to-image from `source`) → Pillow → safety check.
    The processed image, or {code, message} when it cannot be published; ProviderError when the
    provider or the classifier failed."""
    from chalicelib.avatars import images
    from chalicelib.generation.providers import GenerationRequest, RestyleRequest

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


def _emit(generation: "GenerationModel", status: str, slots: list[dict], provider_ms: int) -> None:
    from chalicelib.generation import metrics
    from chalicelib.generation.render import ms_between

    if status not in ("completed", "failed"):
        return
    failures = [{"code": s.get("code") or "unknown"} for s in slots if s["state"] == "failed"]
    metrics.job_finished(status=status, images_made=sum(1 for s in slots if s["state"] == "done"),
                         failures=failures, provider_ms=provider_ms,
                         total_ms=ms_between(generation.queued_at or generation.created_at, clock.now_iso()))
