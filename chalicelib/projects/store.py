"""The project items' data access (`U#{uid}` / `P#{pid}`), by name."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.aws.models import ProjectModel, project_sk, user_pk

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction


# ---- used by generation / usage / events

def check_exists(tx: "Transaction", user_id: str, project_id: str, *, name: str = "project") -> None:
    """Transaction item `name`: ConditionCheck that the project exists (not deleted)."""
    tx.condition_check(name, ProjectModel, user_pk(user_id), project_sk(project_id),
                       condition=ProjectModel.pk.exists())


def from_stream_image(image: dict) -> ProjectModel:
    """A project item as a stream record's image carries it (no call)."""
    return ProjectModel.from_raw_data(image)
