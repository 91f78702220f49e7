"""Projects: a user's folders of avatars. Deleting one is immediate for the user and
completed in the background (tombstone + cleanup queue), so a large project never
shows a half-deleted state."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError

from chalicelib import clock, ids
from chalicelib.aws.db import Transaction, TransactionCancelled, condition_failed, iterate_all, query_page
from chalicelib.errors import DependencyError, NotFoundError
from chalicelib.aws.models import (
    AvatarModel,
    GenerationModel,
    ProjectModel,
    TombstoneModel,
    UserStatsModel,
    project_items_pk,
    project_sk,
    sweep_pk,
    sweep_sk,
    user_pk,
)
from chalicelib.observability import logger


def to_json(project: ProjectModel) -> dict:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description or "",
        "avatarCount": int(project.avatar_count or 0),
        "createdAt": project.created_at,
        "updatedAt": project.updated_at,
    }


def _not_found(project_id: str) -> NotFoundError:
    return NotFoundError("Project not found", details={"projectId": project_id})


def create_project(connection: Any, user_id: str, name: str, description: str) -> ProjectModel:
    project_id = ids.new_id("prj")
    now = clock.now_iso()
    project = ProjectModel(user_pk(user_id), project_sk(project_id), id=project_id, user_id=user_id, name=name,
                           description=description, avatar_count=0, created_at=now, updated_at=now)
    with Transaction(connection) as tx:
        tx.save("project", project, condition=ProjectModel.pk.does_not_exist())
        tx.update("stats", UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.total_projects.add(1)])
    return project


def get_project(user_id: str, project_id: str) -> ProjectModel:
    try:
        return ProjectModel.get(user_pk(user_id), project_sk(project_id))
    except DoesNotExist:
        raise _not_found(project_id) from None


def list_projects(user_id: str, *, limit: int, start_key: dict | None) -> tuple[list[ProjectModel], dict | None]:
    """Newest first: one Query on the user's partition (SK begins_with P#)."""
    return query_page(ProjectModel, user_pk(user_id), limit=limit, start_key=start_key,
                      range_key_condition=ProjectModel.sk.startswith("P#"))


def update_project(user_id: str, project_id: str, *, name: str | None, description: str | None) -> ProjectModel:
    project = ProjectModel(user_pk(user_id), project_sk(project_id))
    actions = [ProjectModel.updated_at.set(clock.now_iso())]
    if name is not None:
        actions.append(ProjectModel.name.set(name))
    if description is not None:
        actions.append(ProjectModel.description.set(description))
    try:
        project.update(actions=actions, condition=ProjectModel.pk.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            raise _not_found(project_id) from None
        raise
    return project


TOMBSTONE_GRACE_SECONDS = 300  # a purge not finished by then is resumed by the sweeper
PURGE_MESSAGE = "project.delete"


def _tombstone_deadline(now: Any) -> str:
    return clock.iso(now + timedelta(seconds=TOMBSTONE_GRACE_SECONDS))


def delete_project(connection: Any, sqs: Any, cleanup_queue_url: str | None, user_id: str, project_id: str) -> None:
    """Remove the project from the user's view at once; its contents go in the background.

    The tombstone sits in the sweep index: if the cleanup message is lost (or the purge stalls), the
    sweeper sends it again after TOMBSTONE_GRACE_SECONDS.
    """
    now = clock.now()
    tombstone = TombstoneModel(user_pk(user_id), f"DELETING#{project_id}", project_id=project_id,
                               created_at=clock.iso(now))
    tombstone.sweep_pk = sweep_pk(tombstone.pk + "#" + tombstone.sk)
    tombstone.sweep_sk = sweep_sk(_tombstone_deadline(now), f"{tombstone.pk}|{tombstone.sk}")
    try:
        with Transaction(connection) as tx:
            tx.delete("project", ProjectModel(user_pk(user_id), project_sk(project_id)),
                      condition=ProjectModel.pk.exists())
            tx.save("tombstone", tombstone)
            tx.update("stats", UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.total_projects.add(-1)])
    except TransactionCancelled as cancelled:
        if cancelled.failed("project"):
            raise _not_found(project_id) from None
        raise
    if not cleanup_queue_url:
        raise DependencyError("Cleanup queue is not configured")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        send_purge(sqs, cleanup_queue_url, user_id, project_id)
    except (BotoCoreError, ClientError) as exc:
        # The tombstone stays: the project is gone for the user and the sweeper re-sends the purge.
        logger.error("cleanup enqueue failed", extra={"projectId": project_id, "error": str(exc)})


def send_purge(sqs: Any, queue_url: str, user_id: str, project_id: str, step: int = 0) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(
        {"type": PURGE_MESSAGE, "userId": user_id, "projectId": project_id, "step": step}))


def _advance(tombstone: TombstoneModel, step: int, now: Any) -> bool:
    """Move the chain to `step + 1` and its deadline on by a grace period, iff it is still at `step`.
    False when another message moved it first (that one carries the chain on)."""
    current = TombstoneModel.step == step if step else TombstoneModel.step.does_not_exist() | (TombstoneModel.step == 0)
    try:
        tombstone.update(actions=[TombstoneModel.step.set(step + 1), TombstoneModel.sweep_sk.set(
            sweep_sk(_tombstone_deadline(now), f"{tombstone.pk}|{tombstone.sk}"))],
            condition=TombstoneModel.pk.exists() & current)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        return False
    return True


def resend_purge(sqs: Any, queue_url: str | None, tombstone: TombstoneModel, now: Any) -> bool:
    """The sweeper found a purge that made no step for a grace period: it starts the chain again
    under a new step, so a message of the stalled chain that turns up later runs nothing."""
    step = int(tombstone.step or 0)
    if not _advance(tombstone, step, now):
        return False
    send_purge(sqs, queue_url, tombstone.pk.removeprefix("U#"), tombstone.project_id, step + 1)
    return True


def purge_deleted_project(connection: Any, storage: Any, user_id: str, project_id: str, *,
                          batch_size: int = 25, step: int | None = None) -> str:
    """One bounded step of a purge; safe to repeat and to run concurrently.

    Removes up to `batch_size` avatars, then the generations, then the tombstone. Returns "more" when
    avatars remain (the chain has moved to `step + 1`: the caller queues that step), "done" when the
    tombstone is gone, "nothing" when there was no purge to do, "stale" when the message's step is
    not the chain's (a duplicate, or a chain the sweeper replaced). A message without a step (sent
    before steps existed) runs whatever the chain's step.
    """
    from chalicelib.avatars import service as avatars

    tombstone = TombstoneModel(user_pk(user_id), f"DELETING#{project_id}")
    try:
        tombstone.refresh(consistent_read=True)
    except DoesNotExist:
        return "nothing"  # already purged (duplicate message) or never deleted
    if step is not None and int(tombstone.step or 0) != step:
        return "stale"
    items_pk = project_items_pk(user_id, project_id)
    page, last_key = query_page(AvatarModel, items_pk, limit=batch_size, index=AvatarModel.by_project,
                                range_key_condition=AvatarModel.gsi1sk.startswith("A#"), newest_first=False)
    for avatar in page:
        avatars.delete_avatar(connection, storage, avatar, project_exists=False)
    if last_key is not None or len(page) >= batch_size:
        return "more" if _advance(tombstone, int(tombstone.step or 0), clock.now()) else "stale"
    for generation in iterate_all(lambda key: GenerationModel.by_project.query(
            items_pk, GenerationModel.gsi1sk.startswith("G#"), last_evaluated_key=key, page_size=100)):
        _delete_generation(connection, generation)
    try:
        tombstone.delete(condition=TombstoneModel.pk.exists())
    except DeleteError as exc:
        if not condition_failed(exc):
            raise
    logger.info("project purged", extra={"projectId": project_id})
    return "done"


def _delete_generation(connection: Any, generation: GenerationModel) -> None:
    for _ in range(5):
        active = generation.status in ("pending", "processing")
        try:
            with Transaction(connection) as tx:
                tx.delete("generation", generation, condition=GenerationModel.status == generation.status)
                if active:
                    tx.update("stats", UserStatsModel(user_pk(generation.user_id)),
                              actions=[UserStatsModel.active_generations.add(-1)])
            return
        except TransactionCancelled as cancelled:
            if not (cancelled.failed("generation") or cancelled.conflict):
                raise
        try:  # its status moved on (a worker finished it) or it is gone: re-read and retry
            generation.refresh(consistent_read=True)
        except DoesNotExist:
            return
    raise DependencyError("A generation kept changing while its project was purged")
