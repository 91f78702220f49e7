"""Projects: a user's folders of avatars. Deleting one is immediate for the user and
completed in the background (tombstone + cleanup queue), so a large project never
shows a half-deleted state."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import clock, ids
from chalicelib.aws.db import Transaction, TransactionCancelled
from chalicelib.errors import DependencyError, NotFoundError
from chalicelib.observability import logger
from chalicelib.generation import store as generation_store
from chalicelib.projects import store
from chalicelib.teams import service as teams, store as team_store
from chalicelib.users import store as user_store

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import GenerationModel, ProjectModel, TombstoneModel


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
    now = clock.now_iso()
    project = store.new_item(user_id, ids.new_id("prj"), name=name, description=description, now=now)
    with Transaction(connection) as tx:
        store.add(tx, project)
        user_store.count_projects(tx, user_id, 1)
        # Where a member's lookup finds the project (issue 30): written with it, so it never lags.
        team_store.add_project_home(tx, project.id, user_id, now=now)
    return project


def get_project(user_id: str, project_id: str) -> ProjectModel:
    project = store.get(user_id, project_id)
    if project is None:
        raise _not_found(project_id)
    return project


def list_projects(user_id: str, *, limit: int, start_key: dict | None) -> tuple[list[ProjectModel], dict | None]:
    """Newest first (store.page_of_user)."""
    return store.page_of_user(user_id, limit=limit, start_key=start_key)


def update_project(user_id: str, project_id: str, *, name: str | None, description: str | None) -> ProjectModel:
    project = store.rename(user_id, project_id, name=name, description=description, now=clock.now_iso())
    if project is None:
        raise _not_found(project_id)
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
    try:
        with Transaction(connection) as tx:
            store.remove(tx, user_id, project_id)
            store.add_tombstone(tx, user_id, project_id, now=clock.iso(now), deadline=_tombstone_deadline(now))
            user_store.count_projects(tx, user_id, -1)
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
    return store.advance(tombstone, step, deadline=_tombstone_deadline(now))


def resend_purge(sqs: Any, queue_url: str | None, tombstone: TombstoneModel, now: Any) -> bool:
    """The sweeper found a purge that made no step for a grace period: it starts the chain again
    under a new step, so a message of the stalled chain that turns up later runs nothing."""
    step = int(tombstone.step or 0)
    if not _advance(tombstone, step, now):
        return False
    send_purge(sqs, queue_url, store.tombstone_user_id(tombstone), tombstone.project_id, step + 1)
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
    from chalicelib.avatars import service as avatars, store as avatar_store

    tombstone = store.tombstone(user_id, project_id)
    if tombstone is None:
        return "nothing"  # already purged (duplicate message) or never deleted
    if step is not None and int(tombstone.step or 0) != step:
        return "stale"
    if int(tombstone.step or 0) == 0:
        # Members lose the project with its first step (issue 30); again at the end, idempotently.
        teams.purge_team(project_id)
    page, last_key = avatar_store.oldest_of_project(user_id, project_id, limit=batch_size)
    for avatar in page:
        avatars.delete_avatar(connection, storage, avatar, project_exists=False)
    if last_key is not None or len(page) >= batch_size:
        return "more" if _advance(tombstone, int(tombstone.step or 0), clock.now()) else "stale"
    for generation in generation_store.generations_of_project(user_id, project_id):
        _delete_generation(connection, generation)
    avatars.end_exports(user_id, "project", project_id)  # before the tombstone: a crash runs it again
    teams.purge_team(project_id)
    store.delete_tombstone(tombstone)
    logger.info("project purged", extra={"projectId": project_id})
    return "done"


def _delete_generation(connection: Any, generation: GenerationModel) -> None:
    for _ in range(5):
        active = generation.status in ("pending", "processing")
        try:
            with Transaction(connection) as tx:
                generation_store.delete_generation(tx, generation)
                team_store.delete_item_home(tx, "generation", generation.id)
                if active:
                    user_store.count_active_generations(tx, generation_store.payer(generation), -1)
            return
        except TransactionCancelled as cancelled:
            if not (cancelled.failed("generation") or cancelled.conflict):
                raise
        # its status moved on (a worker finished it) or it is gone: re-read and retry
        if not generation_store.refresh(generation):
            return
    raise DependencyError("A generation kept changing while its project was purged")


def purge_step(user_id: str, project_id: str) -> int:
    """The step the project's purge chain is at (NotFoundError when no purge is under way)."""
    tombstone = store.tombstone(user_id, project_id)
    if tombstone is None:
        raise NotFoundError("No purge under way", details={"projectId": project_id})
    return int(tombstone.step or 0)
