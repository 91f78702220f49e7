"""Projects: a user's folders of avatars. Deleting one is immediate for the user and
completed in the background (tombstone + cleanup queue), so a large project never
shows a half-deleted state."""
from __future__ import annotations

import json
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib import clock, ids
from chalicelib.db import condition_failed, iterate_all, query_page, transaction_condition_failed
from chalicelib.errors import DependencyError, NotFoundError
from chalicelib.models import (
    AvatarModel,
    GenerationModel,
    ProjectModel,
    TombstoneModel,
    UserStatsModel,
    project_items_pk,
    project_sk,
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
    with TransactWrite(connection=connection) as tx:
        tx.save(project, condition=ProjectModel.pk.does_not_exist())
        tx.update(UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.total_projects.add(1)])
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


def delete_project(connection: Any, sqs: Any, cleanup_queue_url: str | None, user_id: str, project_id: str) -> None:
    """Remove the project from the user's view at once; its contents go in the background."""
    now = clock.now_iso()
    try:
        with TransactWrite(connection=connection) as tx:
            tx.delete(ProjectModel(user_pk(user_id), project_sk(project_id)), condition=ProjectModel.pk.exists())
            tx.save(TombstoneModel(user_pk(user_id), f"DELETING#{project_id}", project_id=project_id,
                                   created_at=now))
            tx.update(UserStatsModel(user_pk(user_id)), actions=[UserStatsModel.total_projects.add(-1)])
    except TransactWriteError as exc:
        if transaction_condition_failed(exc):
            raise _not_found(project_id) from None
        raise
    if not cleanup_queue_url:
        raise DependencyError("Cleanup queue is not configured")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sqs.send_message(QueueUrl=cleanup_queue_url,
                         MessageBody=json.dumps({"type": "project.delete", "userId": user_id, "projectId": project_id}))
    except (BotoCoreError, ClientError) as exc:
        # The tombstone stays: the project is gone for the user and the purge can be re-sent.
        logger.error("cleanup enqueue failed", extra={"projectId": project_id, "error": str(exc)})


def purge_deleted_project(connection: Any, storage: Any, user_id: str, project_id: str) -> int:
    """Cleanup worker step; safe to repeat. Returns the number of avatars removed."""
    from chalicelib import avatars

    tombstone = TombstoneModel(user_pk(user_id), f"DELETING#{project_id}")
    try:
        tombstone.refresh(consistent_read=True)
    except DoesNotExist:
        return 0  # already purged (duplicate message) or never deleted: nothing to do
    items_pk = project_items_pk(user_id, project_id)
    removed = 0
    for avatar in iterate_all(lambda key: AvatarModel.by_project.query(
            items_pk, AvatarModel.gsi1sk.startswith("A#"), last_evaluated_key=key, page_size=100)):
        if avatars.delete_avatar(connection, storage, avatar, project_exists=False):
            removed += 1
    for generation in iterate_all(lambda key: GenerationModel.by_project.query(
            items_pk, GenerationModel.gsi1sk.startswith("G#"), last_evaluated_key=key, page_size=100)):
        _delete_generation(connection, generation)
    tombstone.delete()
    logger.info("project purged", extra={"projectId": project_id, "avatars": removed})
    return removed


def _delete_generation(connection: Any, generation: GenerationModel) -> None:
    active = generation.status in ("pending", "processing")
    try:
        with TransactWrite(connection=connection) as tx:
            tx.delete(generation, condition=GenerationModel.status == generation.status)
            if active:
                tx.update(UserStatsModel(user_pk(generation.user_id)),
                          actions=[UserStatsModel.active_generations.add(-1)])
    except TransactWriteError as exc:
        if not transaction_condition_failed(exc):
            raise
        try:  # its status moved on (a worker finished it) or it is gone: re-read and retry
            generation.refresh(consistent_read=True)
        except DoesNotExist:
            return
        _delete_generation(connection, generation)
