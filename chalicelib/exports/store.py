"""The export items' data access: every read and write of an export item, by name, and the only
module of the package that builds PynamoDB expressions. Each write that moves an export on is
conditional on what its caller read (the step, the claim token, the status), so a duplicate
message or a sweep racing a worker changes nothing twice; such a write answers False."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib import clock
from chalicelib.aws.db import Transaction, TransactionCancelled, condition_failed, iterate_all
from chalicelib.aws.models import (
    EXPORT_SK,
    META,
    ExportDayModel,
    ExportModel,
    avatar_pk,
    export_pk,
    project_items_pk,
    sweep_pk,
    sweep_sk,
    user_pk,
)

ACTIVE = ("pending", "running")
ENDED = ("completed", "failed")


def _sweep(export: ExportModel, deadline: str) -> list:
    return [ExportModel.sweep_pk.set(sweep_pk(export.pk)), ExportModel.sweep_sk.set(sweep_sk(deadline, export.pk))]


def _applied(call: Any) -> bool:
    try:
        call()
    except (UpdateError, PutError) as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def new(user_id: str, export_id: str, *, scope: str, target_id: str, total: int, now: datetime,
        expires_at: str, deadline: str, home: str | None = None) -> ExportModel:
    export = ExportModel(export_pk(user_id, export_id), EXPORT_SK, id=export_id, user_id=user_id, scope=scope,
                         target_id=target_id, status="pending", total=total, done=0, step=0,
                         created_at=clock.iso(now), updated_at=clock.iso(now), expires_at=expires_at)
    if home and home != user_id:
        export.home = home
    export.sweep_pk = sweep_pk(export.pk)
    export.sweep_sk = sweep_sk(deadline, export.pk)
    export.gsi1pk = target_pk(user_id, scope, target_id)
    export.gsi1sk = f"X#{export_id}"
    return export


def target_pk(user_id: str, scope: str, target_id: str) -> str:
    """GSI1 partition of the exports of one avatar or project."""
    return (avatar_pk(user_id, target_id) if scope == "avatar" else project_items_pk(user_id, target_id)) + "#X"


def of_target(user_id: str, scope: str, target_id: str) -> list[ExportModel]:
    """Every export of one avatar or project: Query GSI1 `{target}#X` (delete paths and the audit only;
    at most the daily limit × the retention days)."""
    return list(iterate_all(lambda key: ExportModel.by_target.query(
        target_pk(user_id, scope, target_id), ExportModel.gsi1sk.startswith("X#"), last_evaluated_key=key,
        page_size=100)))


def cut_short(export: ExportModel, now: datetime) -> bool:
    """Its avatar or project is gone: `expiresAt` = now, and an ended one due in the sweep index now, so
    the sweeper's expiry removes its files at its next run (an active one gets there when it ends).
    Condition: not expired yet. False when it already was."""
    stamp = clock.iso(now)
    actions = [ExportModel.expires_at.set(stamp), ExportModel.updated_at.set(stamp)]
    if export.status in ENDED:
        actions += _sweep(export, stamp)
    return _applied(lambda: export.update(actions=actions, condition=ExportModel.status == export.status))


def create(connection: Any, export: ExportModel, *, daily_limit: int, now: datetime) -> bool:
    """The export and the user's count of exports today, in one transaction; False (nothing written)
    when the user has started `daily_limit` exports today already."""
    day = "EXPORTS#" + clock.day_key(now).removeprefix("DAY#")
    try:
        with Transaction(connection) as tx:
            tx.save("export", export, condition=ExportModel.pk.does_not_exist())
            tx.update("daily", ExportDayModel(user_pk(export.user_id), day),
                      actions=[ExportDayModel.count.add(1), ExportDayModel.ttl.set(clock.epoch(now) + 2 * 86400)],
                      condition=ExportDayModel.count.does_not_exist() | (ExportDayModel.count < daily_limit))
    except TransactionCancelled as cancelled:
        if cancelled.failed("daily"):
            return False
        raise
    return True


def get(user_id: str, export_id: str, *, consistent: bool = False) -> ExportModel | None:
    try:
        return ExportModel.get(export_pk(user_id, export_id), EXPORT_SK, consistent_read=consistent)
    except DoesNotExist:
        return None


def read(pk: str, sk: str) -> ExportModel | None:
    try:
        return ExportModel.get(pk, sk, consistent_read=True)
    except DoesNotExist:
        return None


def is_export_key(pk: str, sk: str) -> bool:
    return sk == EXPORT_SK and "#X#" in pk


def claim(export: ExportModel, step: int, token: str, lease_until: int, now: datetime, deadline: str) -> bool:
    """The run of `step` owns the export until `lease_until`, iff the chain is at `step` and no live
    run holds it. Its sweep deadline moves past the lease."""
    free = ExportModel.lease_until.does_not_exist() | (ExportModel.lease_until <= clock.epoch(now))
    return _applied(lambda: export.update(actions=[
        ExportModel.status.set("running"), ExportModel.claim_token.set(token), ExportModel.lease_until.set(lease_until),
        ExportModel.updated_at.set(clock.iso(now)), *_sweep(export, deadline),
    ], condition=(ExportModel.step == step) & ExportModel.status.is_in(*ACTIVE) & free))


def _owned(step: int, token: str) -> Any:
    return (ExportModel.step == step) & (ExportModel.claim_token == token)


def record_upload(export: ExportModel, step: int, token: str, upload_id: str, key: str) -> bool:
    return _applied(lambda: export.update(actions=[ExportModel.upload_id.set(upload_id), ExportModel.key.set(key)],
                                          condition=_owned(step, token) & ExportModel.upload_id.does_not_exist()))


def progress(export: ExportModel, step: int, token: str, done: int) -> bool:
    """How far the owning run is, for GET /exports/{id} between steps."""
    return _applied(lambda: export.update(actions=[ExportModel.done.set(done)], condition=_owned(step, token)))


def advance(export: ExportModel, step: int, token: str, *, parts: list[dict], done: int, cursor: str | None,
            bytes_written: int, checkpoint: str, now: datetime, deadline: str) -> bool:
    """Hand the chain on to `step + 1`: what this run wrote (parts, progress, the checkpoint's key)
    is recorded and its claim given up, iff it still owns the step."""
    actions = [ExportModel.step.set(step + 1), ExportModel.parts.set(parts), ExportModel.done.set(done),
               ExportModel.bytes_written.set(bytes_written), ExportModel.checkpoint.set(checkpoint),
               ExportModel.claim_token.remove(), ExportModel.lease_until.remove(),
               ExportModel.updated_at.set(clock.iso(now)), *_sweep(export, deadline)]
    actions.append(ExportModel.cursor.set(cursor) if cursor else ExportModel.cursor.remove())
    return _applied(lambda: export.update(actions=actions, condition=_owned(step, token)))


def complete(export: ExportModel, step: int, token: str | None, *, done: int, size: int, now: datetime) -> bool:
    """`completed`: the zip is whole in S3. `token` None: a takeover found the zip already there."""
    condition = _owned(step, token) if token else (ExportModel.status == "running")
    return _applied(lambda: export.update(actions=[
        ExportModel.status.set("completed"), ExportModel.done.set(done), ExportModel.total.set(done),
        ExportModel.size.set(size), ExportModel.completed_at.set(clock.iso(now)),
        ExportModel.updated_at.set(clock.iso(now)), ExportModel.claim_token.remove(), ExportModel.lease_until.remove(),
        ExportModel.upload_id.remove(), ExportModel.parts.remove(), ExportModel.cursor.remove(),
        ExportModel.checkpoint.remove(), *_sweep(export, export.expires_at),
    ], condition=condition))


def fail(export: ExportModel, code: str, message: str, now: datetime, *, token: str | None = None) -> bool:
    """`failed` with a reason, iff still active (and, with `token`, still owned by that run); it stays
    in the sweep index until it expires (its checkpoint and upload are removed by the caller)."""
    condition = ExportModel.status.is_in(*ACTIVE) & (ExportModel.step == int(export.step or 0))
    if token:
        condition = condition & (ExportModel.claim_token == token)
    return _applied(lambda: export.update(actions=[
        ExportModel.status.set("failed"), ExportModel.error_code.set(code), ExportModel.error_message.set(message),
        ExportModel.updated_at.set(clock.iso(now)), ExportModel.claim_token.remove(), ExportModel.lease_until.remove(),
        ExportModel.upload_id.remove(), ExportModel.parts.remove(), ExportModel.checkpoint.remove(),
        *_sweep(export, export.expires_at),
    ], condition=condition))


def resend(export: ExportModel, now: datetime, deadline: str) -> bool:
    """The sweeper restarts a stalled chain under a new step (a message of the old one runs nothing)."""
    step = int(export.step or 0)
    free = ExportModel.lease_until.does_not_exist() | (ExportModel.lease_until <= clock.epoch(now))
    return _applied(lambda: export.update(actions=[
        ExportModel.step.set(step + 1), ExportModel.resends.set(int(export.resends or 0) + 1),
        ExportModel.claim_token.remove(), ExportModel.lease_until.remove(), ExportModel.updated_at.set(clock.iso(now)),
        *_sweep(export, deadline),
    ], condition=(ExportModel.step == step) & ExportModel.status.is_in(*ACTIVE) & free))


def postpone(export: ExportModel, deadline: str) -> bool:
    """A live run holds it: look again after its lease."""
    return _applied(lambda: export.update(actions=_sweep(export, deadline),
                                          condition=ExportModel.status.is_in(*ACTIVE)))


def expire(export: ExportModel, now: datetime, item_ttl: int) -> bool:
    """`expired`: its files are gone; out of the sweep index; the item itself goes by TTL."""
    return _applied(lambda: export.update(actions=[
        ExportModel.status.set("expired"), ExportModel.updated_at.set(clock.iso(now)), ExportModel.ttl.set(item_ttl),
        ExportModel.sweep_pk.remove(), ExportModel.sweep_sk.remove(), ExportModel.upload_id.remove(),
        ExportModel.parts.remove(), ExportModel.checkpoint.remove(),
    ], condition=ExportModel.status == export.status))


def avatar_start_key(user_id: str, project_id: str, avatar_id: str | None) -> dict | None:
    """Where a project's avatar listing (GSI1, newest first) goes on after `avatar_id`: the position
    is a key, so it holds even when that avatar was deleted meanwhile."""
    if not avatar_id:
        return None
    return {"PK": {"S": avatar_pk(user_id, avatar_id)}, "SK": {"S": META},
            "GSI1PK": {"S": project_items_pk(user_id, project_id)}, "GSI1SK": {"S": f"A#{avatar_id}"}}
