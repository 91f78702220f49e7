"""Generation jobs' data access: every read and write of a generation item (`U#{uid}#G#{gid}` / META)
and of an Idempotency-Key item (`U#{uid}` / `IDEM#{key}`), by name.

The rules — which status follows which, who owns a job, what a slot holds, what is charged — are
`jobs.py`'s and `requests.py`'s; this module only knows how each step is written. Operations that
join a transaction take the caller's `chalicelib.aws.db.Transaction` and add one named item to it
(default name "generation" / "idempotency"), so the caller decides what commits together and reads
`TransactionCancelled.reasons` by that name.

    reads        get, refresh, key, list_active, list_for_project, from_stream_image
    start        new, create (tx), remember_key (tx), requeue (tx)
    one run      claim, record_image (tx), write_slots, write_summary, release, hand_on, abandon
    ending       end (tx), mark_dead_lettered, move_deadline

Every write of a run after its claim is conditional on the run's token (status `processing` and
`claimToken` = token): such an operation answers False when the run no longer owns the job.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from pynamodb.exceptions import DoesNotExist

from chalicelib.aws.db import iterate_all, query_page, update_if
from chalicelib.aws.models import (
    META,
    GenerationModel,
    IdempotencyKeyModel,
    generation_pk,
    project_active_pk,
    project_items_pk,
    sweep_pk,
    sweep_sk,
    user_pk,
)

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction

G = GenerationModel


# ---- reads ----------------------------------------------------------------------------------------

def get(user_id: str, generation_id: str, *, consistent: bool = False) -> GenerationModel | None:
    """GetItem `U#{uid}#G#{gid}` / META (strongly consistent on request); None when there is none."""
    try:
        return GenerationModel.get(generation_pk(user_id, generation_id), META, consistent_read=consistent)
    except DoesNotExist:
        return None


def refresh(generation: GenerationModel) -> bool:
    """The job read again in place (GetItem, consistent); False when it is gone."""
    try:
        generation.refresh(consistent_read=True)
    except DoesNotExist:
        return False
    return True


def key(user_id: str, idempotency_key: str) -> IdempotencyKeyModel | None:
    """GetItem `U#{uid}` / `IDEM#{key}` (consistent): the generation an Idempotency-Key started."""
    try:
        return IdempotencyKeyModel.get(user_pk(user_id), f"IDEM#{idempotency_key}", consistent_read=True)
    except DoesNotExist:
        return None


def list_active(user_id: str, project_id: str, *, limit: int,
                start_key: dict | None) -> tuple[list[GenerationModel], dict | None]:
    """A project's pending/processing jobs: one Query on the sparse GSI2 `U#{uid}#P#{pid}#ACTIVE`."""
    return query_page(GenerationModel, project_active_pk(user_id, project_id), limit=limit, start_key=start_key,
                      index=GenerationModel.active_by_project)


def generations_of_project(user_id: str, project_id: str) -> Iterator[GenerationModel]:
    """Every generation of the project: Query GSI1 U#{uid}#P#{pid}, SK begins_with G#, page by page."""
    return iterate_all(lambda key: GenerationModel.by_project.query(
        project_items_pk(user_id, project_id), GenerationModel.gsi1sk.startswith("G#"), last_evaluated_key=key,
        page_size=100))


def delete_generation(tx: "Transaction", generation: GenerationModel, *, name: str = "generation") -> None:
    """Delete the generation, condition: the status it was read with."""
    tx.delete(name, generation, condition=GenerationModel.status == generation.status)


def list_for_project(user_id: str, project_id: str, *, limit: int,
                     start_key: dict | None) -> tuple[list[GenerationModel], dict | None]:
    """A project's jobs, newest first: one Query on GSI1 `U#{uid}#P#{pid}`, SK begins_with `G#`."""
    return query_page(GenerationModel, project_items_pk(user_id, project_id), limit=limit, start_key=start_key,
                      index=GenerationModel.by_project, range_key_condition=GenerationModel.gsi1sk.startswith("G#"))


def from_stream_image(image: dict) -> GenerationModel:
    """A generation item as a stream record's image carries it (no call)."""
    return GenerationModel.from_raw_data(image)


# ---- the slots' projection ------------------------------------------------------------------------
# What the API shows of the slots is stored beside them, in the same write: avatarIds (image order),
# avatarId (the first), imagesMade, imagesFailed, failures.

def failure_of(index: int, slot: dict) -> dict:
    """One image not made, as `failures` lists it."""
    return {"index": index, "code": slot.get("code") or "unknown", "message": str(slot.get("message") or "")[:300]}


def failures_of(slots: list[dict]) -> list[dict]:
    """The images not made, in image order, as `failures` lists them (no call)."""
    return [failure_of(i, s) for i, s in enumerate(slots) if s["state"] == "failed"]


def _slot_actions(slots: list[dict]) -> list:
    made = [s["avatarId"] for s in slots if s["state"] == "done"]
    failed = failures_of(slots)
    return [G.slots.set(slots), G.avatar_ids.set(made) if made else G.avatar_ids.remove(),
            G.avatar_id.set(made[0]) if made else G.avatar_id.remove(),
            G.images_made.set(len(made)), G.images_failed.set(len(failed)),
            G.failures.set(failed) if failed else G.failures.remove()]


# ---- start ----------------------------------------------------------------------------------------

def new(user_id: str, project_id: str, generation_id: str, *, deadline: str, **fields: Any) -> GenerationModel:
    """A new job item (not written): its keys — the project's items (GSI1), the project's active jobs
    (GSI2, sparse) and the sweep index (GSI3) until `deadline` — and `fields`."""
    pk = generation_pk(user_id, generation_id)
    return GenerationModel(
        pk, META, gsi1pk=project_items_pk(user_id, project_id), gsi1sk=f"G#{generation_id}",
        gsi2pk=project_active_pk(user_id, project_id), gsi2sk=f"G#{generation_id}",
        sweep_pk=sweep_pk(pk), sweep_sk=sweep_sk(deadline, pk), deadline=deadline,
        id=generation_id, user_id=user_id, project_id=project_id, **fields)


def create(tx: "Transaction", generation: GenerationModel, *, name: str = "generation") -> None:
    """Transaction item `name`: Put the new job (condition: it does not exist)."""
    tx.save(name, generation, condition=GenerationModel.pk.does_not_exist())


def remember_key(tx: "Transaction", user_id: str, idempotency_key: str, *, generation_id: str, request_hash: str,
                 created_at: str, ttl: int, name: str = "idempotency") -> None:
    """Transaction item `name`: Put `U#{uid}` / `IDEM#{key}` → the generation (condition: the key is unused)."""
    tx.save(name, IdempotencyKeyModel(user_pk(user_id), f"IDEM#{idempotency_key}", generation_id=generation_id,
                                      request_hash=request_hash, created_at=created_at, ttl=ttl),
            condition=IdempotencyKeyModel.pk.does_not_exist())


def payer(generation: GenerationModel) -> str:
    """Who the job's quota and active-job count belong to: who started it (issue 30), else its owner."""
    return generation.started_by or generation.user_id


def requeue(tx: "Transaction", generation: GenerationModel, *, from_status: str, now_iso: str, quota_day: str,
            deadline: str, started_by: str | None = None, name: str = "generation") -> None:
    """Transaction item `name`: the job back to `pending` as if new (condition: status is `from_status`):
    progress, attempts, slots, results, errors, ownership and `startedAt` cleared; `queuedAt`, `quotaDay`,
    the queue deadline (GSI3) and the project's active index (GSI2) set again."""
    tx.update(name, generation, actions=[
        G.status.set("pending"), G.stage.set("queued"), G.progress.set(0), G.attempts.set(0),
        G.error_message.remove(), G.completed_at.remove(), G.claim_token.remove(), G.lease_until.remove(),
        G.error_code.remove(), G.images_made.remove(), G.images_failed.remove(), G.failures.remove(),
        G.slots.remove(), G.handed_on.remove(), G.avatar_ids.remove(), G.avatar_id.remove(),
        G.started_at.remove(), G.provider_ms.remove(), G.dead_lettered_at.remove(), G.queued_at.set(now_iso),
        G.quota_day.set(quota_day), G.deadline.set(deadline), G.sweep_pk.set(sweep_pk(generation.pk)),
        G.sweep_sk.set(sweep_sk(deadline, generation.pk)),
        G.gsi2pk.set(project_active_pk(generation.user_id, generation.project_id)),
        G.gsi2sk.set(f"G#{generation.id}"), G.updated_at.set(now_iso),
        G.started_by.set(started_by) if started_by and started_by != generation.user_id else G.started_by.remove(),
    ], condition=G.status == from_status)


# ---- one run --------------------------------------------------------------------------------------

def claim(generation: GenerationModel, *, continuing: bool, epoch: int, token: str, lease_until: int,
          progress: int, now_iso: str, slots: list[dict] | None = None,
          started: tuple[str, str] | None = None) -> bool:
    """UpdateItem giving the job to a run: `processing`, its token and lease, `handedOn` removed,
    `attempts` + 1 (+ 0 for a continuation), the slots when given (a job that had none), and on a
    first claim `started` = (startedAt, running deadline) with the sweep index moved to that deadline.

    Condition — a continuation: `pending` with `handedOn`; otherwise `pending` without `handedOn`, or
    `processing` whose lease has ended (`leaseUntil` absent or <= `epoch`). False when it failed."""
    if continuing:
        condition = (G.status == "pending") & G.handed_on.exists()
    else:
        condition = ((G.status == "pending") & G.handed_on.does_not_exist()) | (
            (G.status == "processing") & (G.lease_until.does_not_exist() | (G.lease_until <= epoch)))
    actions = [G.status.set("processing"), G.stage.set("generating"), G.progress.set(progress),
               G.attempts.add(0 if continuing else 1), G.claim_token.set(token), G.lease_until.set(lease_until),
               G.handed_on.remove(), G.updated_at.set(now_iso)]
    if slots is not None:
        actions.append(G.slots.set(slots))
    if started is not None:
        started_at, deadline = started
        actions += [G.started_at.set(started_at), G.deadline.set(deadline),
                    G.sweep_pk.set(sweep_pk(generation.pk)), G.sweep_sk.set(sweep_sk(deadline, generation.pk))]
    return update_if(generation, actions, condition)


def _owned(token: str) -> Any:
    return (G.status == "processing") & (G.claim_token == token)



def record_image(tx: "Transaction", generation: GenerationModel, token: str, *, slots: list[dict], progress: int,
                 now_iso: str, name: str = "generation") -> None:
    """Transaction item `name`: the slots (one more `done`), their projection and progress (condition:
    the run with `token` owns the job)."""
    tx.update(name, generation, condition=_owned(token),
              actions=[*_slot_actions(slots), G.progress.set(progress), G.updated_at.set(now_iso)])


def write_slots(generation: GenerationModel, token: str, *, slots: list[dict], progress: int, now_iso: str) -> bool:
    """UpdateItem: the slots, their projection and progress (owned by `token`; False otherwise)."""
    return update_if(generation, [*_slot_actions(slots), G.progress.set(progress), G.updated_at.set(now_iso)],
                   _owned(token))


def write_summary(generation: GenerationModel, token: str, *, provider_ms: int, safety: str | None,
                  provider: str | None, model: str | None) -> bool:
    """UpdateItem: what the run that ends the job shows — time in the provider, and (when known) the
    classifier's state, the provider and the model (owned by `token`; False otherwise)."""
    actions = [G.provider_ms.set(provider_ms)]
    for attribute, value in ((G.safety, safety), (G.provider, provider), (G.model, model)):
        if value:
            actions.append(attribute.set(value))
    return update_if(generation, actions, _owned(token))


def release(generation: GenerationModel, token: str, *, error_code: str, error_message: str, now_iso: str) -> bool:
    """UpdateItem: back to `pending` (queued) without an owner, with the failure's code and message
    (owned by `token`; False otherwise)."""
    return update_if(generation, [G.status.set("pending"), G.stage.set("queued"), G.claim_token.remove(),
                                G.lease_until.remove(), G.error_code.set(error_code),
                                G.error_message.set(error_message), G.updated_at.set(now_iso)], _owned(token))


def hand_on(generation: GenerationModel, token: str, *, now_iso: str) -> bool:
    """UpdateItem: back to `pending` (queued) with `handedOn`, without an owner (owned by `token`;
    False otherwise)."""
    return update_if(generation, [G.status.set("pending"), G.stage.set("queued"), G.handed_on.set(True),
                                G.claim_token.remove(), G.lease_until.remove(), G.updated_at.set(now_iso)],
                   _owned(token))


def abandon(generation: GenerationModel, token: str, *, now_iso: str) -> bool:
    """UpdateItem: back to `pending` (queued) without an owner (owned by `token`; False otherwise)."""
    return update_if(generation, [G.status.set("pending"), G.stage.set("queued"), G.claim_token.remove(),
                                G.lease_until.remove(), G.updated_at.set(now_iso)], _owned(token))


# ---- ending ---------------------------------------------------------------------------------------

def end(tx: "Transaction", generation: GenerationModel, *, status: str, from_statuses: tuple[str, ...],
        slots: list[dict], now_iso: str, token: str | None = None, progress: int | None = None,
        error_code: str | None = None, error_message: str | None = None, clear_error: bool = False,
        dead_lettered_at: str | None = None, drop_token: bool = False, name: str = "generation") -> None:
    """Transaction item `name`: the job's terminal write — `status`, `completedAt`, stage `done`, the
    slots and their projection; out of the active (GSI2) and sweep (GSI3) indexes, lease and
    `handedOn` removed; optionally `progress`, the error's code and message (or `clear_error`: both
    removed), `deadLetteredAt`, and the token removed (`drop_token`).
    Condition: status in `from_statuses` (and, with `token`, owned by that run)."""
    actions = [G.status.set(status), G.updated_at.set(now_iso), G.completed_at.set(now_iso), G.gsi2pk.remove(),
               G.gsi2sk.remove(), G.sweep_pk.remove(), G.sweep_sk.remove(), G.lease_until.remove(),
               G.handed_on.remove(), G.stage.set("done"), *_slot_actions(slots)]
    if clear_error:
        actions += [G.error_code.remove(), G.error_message.remove()]
    if dead_lettered_at is not None:
        actions.append(G.dead_lettered_at.set(dead_lettered_at))
    if drop_token:
        actions.append(G.claim_token.remove())
    if progress is not None:
        actions.append(G.progress.set(progress))
    if error_message is not None:
        actions.append(G.error_message.set(error_message))
    if error_code is not None:
        actions.append(G.error_code.set(error_code))
    condition = G.status.is_in(*from_statuses)
    if token is not None:
        condition = condition & (G.claim_token == token)
    tx.update(name, generation, actions=actions, condition=condition)


def mark_dead_lettered(generation: GenerationModel, at: str) -> None:
    """UpdateItem: `deadLetteredAt` (condition: the item still exists — a purge may have removed it;
    then nothing is written)."""
    update_if(generation, [G.dead_lettered_at.set(at)], G.pk.exists())


def move_deadline(generation: GenerationModel, deadline: str, *, while_status_in: tuple[str, ...]) -> None:
    """UpdateItem: `deadline` and the sweep index's key (condition: status in `while_status_in`;
    nothing is written otherwise)."""
    update_if(generation, [G.deadline.set(deadline), G.sweep_sk.set(sweep_sk(deadline, generation.pk))],
            G.status.is_in(*while_status_in))
