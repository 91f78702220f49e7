"""The projects' data access: every read and write of a project's items, by name.

    U#{uid} / P#{pid}          the project (its avatarCount moves with each avatar that becomes ready or leaves)
    U#{uid} / DELETING#{pid}   its tombstone while the purge runs   GSI3 SWEEP#n / {deadline}#{PK}|{SK}

The rules (chalicelib.projects.service, and the avatars and generations kept in a project) decide
what changes; these operations say how. A write refused by its condition answers False (or None for
a read that found nothing); operations that take a `Transaction` add one named item ("project",
"tombstone", …) and the caller reads `TransactionCancelled.reasons` by that name.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pynamodb.exceptions import DeleteError, DoesNotExist

from chalicelib.aws.db import condition_failed, query_page, update_if
from chalicelib.aws.models import (
    ProjectModel,
    TombstoneModel,
    project_sk,
    sweep_pk,
    sweep_sk,
    user_pk,
)

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction


# ---- the project ------------------------------------------------------------------------------

def new_item(user_id: str, project_id: str, *, name: str, description: str, now: str) -> ProjectModel:
    """A project not yet written, with no avatars."""
    return ProjectModel(user_pk(user_id), project_sk(project_id), id=project_id, user_id=user_id, name=name,
                        description=description, avatar_count=0, created_at=now, updated_at=now)


def get(user_id: str, project_id: str) -> ProjectModel | None:
    """GetItem U#{uid} / P#{pid}; None when there is none."""
    try:
        return ProjectModel.get(user_pk(user_id), project_sk(project_id))
    except DoesNotExist:
        return None


def page_of_user(user_id: str, *, limit: int, start_key: dict | None) -> tuple[list[ProjectModel], dict | None]:
    """A user's projects, newest first: one Query on U#{uid}, SK begins_with P#."""
    return query_page(ProjectModel, user_pk(user_id), limit=limit, start_key=start_key,
                      range_key_condition=ProjectModel.sk.startswith("P#"))


def add(tx: "Transaction", project: ProjectModel, *, name: str = "project") -> None:
    """Put the project, condition: no item has its key."""
    tx.save(name, project, condition=ProjectModel.pk.does_not_exist())


def require(tx: "Transaction", user_id: str, project_id: str, *, name: str = "project") -> None:
    """ConditionCheck: the project exists (what is written with it cannot land in a deleted one)."""
    tx.condition_check(name, ProjectModel, user_pk(user_id), project_sk(project_id),
                       condition=ProjectModel.pk.exists())


def count_avatars(tx: "Transaction", user_id: str, project_id: str, delta: int, *, name: str = "project") -> None:
    """ADD avatarCount `delta`, condition: the project exists."""
    tx.update(name, ProjectModel(user_pk(user_id), project_sk(project_id)),
              actions=[ProjectModel.avatar_count.add(delta)], condition=ProjectModel.pk.exists())


def rename(user_id: str, project_id: str, *, name: str | None, description: str | None,
           now: str) -> ProjectModel | None:
    """UpdateItem of the name and description given (None: unchanged) and updatedAt, condition: the
    project exists. The project as written, or None when there is none."""
    project = ProjectModel(user_pk(user_id), project_sk(project_id))
    actions = [ProjectModel.updated_at.set(now)]
    if name is not None:
        actions.append(ProjectModel.name.set(name))
    if description is not None:
        actions.append(ProjectModel.description.set(description))
    return project if update_if(project, actions, ProjectModel.pk.exists()) else None


def remove(tx: "Transaction", user_id: str, project_id: str, *, name: str = "project") -> None:
    """Delete the project, condition: it exists."""
    tx.delete(name, ProjectModel(user_pk(user_id), project_sk(project_id)), condition=ProjectModel.pk.exists())


# ---- the tombstone (a purge under way) ----------------------------------------------------------

def _tombstone_item(user_id: str, project_id: str) -> TombstoneModel:
    return TombstoneModel(user_pk(user_id), f"DELETING#{project_id}")


def _tombstone_sweep_sk(tombstone: TombstoneModel, deadline: str) -> str:
    return sweep_sk(deadline, f"{tombstone.pk}|{tombstone.sk}")


def add_tombstone(tx: "Transaction", user_id: str, project_id: str, *, now: str, deadline: str,
                  name: str = "tombstone") -> None:
    """Put the tombstone (no step yet), in the sweep index by `deadline`."""
    tombstone = _tombstone_item(user_id, project_id)
    tombstone.project_id, tombstone.created_at = project_id, now
    tombstone.sweep_pk = sweep_pk(tombstone.pk + "#" + tombstone.sk)
    tombstone.sweep_sk = _tombstone_sweep_sk(tombstone, deadline)
    tx.save(name, tombstone)


def tombstone(user_id: str, project_id: str) -> TombstoneModel | None:
    """The tombstone as it is now (consistent GetItem U#{uid} / DELETING#{pid}); None when there is none."""
    item = _tombstone_item(user_id, project_id)
    try:
        item.refresh(consistent_read=True)
    except DoesNotExist:
        return None
    return item


def tombstone_user_id(tombstone: TombstoneModel) -> str:
    return tombstone.pk.removeprefix("U#")


def advance(tombstone: TombstoneModel, step: int, *, deadline: str) -> bool:
    """UpdateItem step = `step` + 1 and the sweep deadline, condition: it exists at `step` (none: 0).
    False when another message moved it first."""
    current = (TombstoneModel.step == step if step else
               TombstoneModel.step.does_not_exist() | (TombstoneModel.step == 0))
    return update_if(tombstone, [TombstoneModel.step.set(step + 1),
                                 TombstoneModel.sweep_sk.set(_tombstone_sweep_sk(tombstone, deadline))],
                     TombstoneModel.pk.exists() & current)


def delete_tombstone(tombstone: TombstoneModel) -> None:
    """DeleteItem, condition: it exists (gone already is fine)."""
    try:
        tombstone.delete(condition=TombstoneModel.pk.exists())
    except DeleteError as exc:
        if not condition_failed(exc):
            raise


# ---- used by generation / usage / events

def check_exists(tx: "Transaction", user_id: str, project_id: str, *, name: str = "project") -> None:
    """Transaction item `name`: ConditionCheck that the project exists (not deleted)."""
    tx.condition_check(name, ProjectModel, user_pk(user_id), project_sk(project_id),
                       condition=ProjectModel.pk.exists())


def from_stream_image(image: dict) -> ProjectModel:
    """A project item as a stream record's image carries it (no call)."""
    return ProjectModel.from_raw_data(image)
