"""Who may act on a project, avatar or generation that is not in their own partition.

The API runs every route with the caller's own id first (today's path: one GetItem, nothing extra for
an owner). Only when that misses does it ask `resolve`:

    GetItem {PRJ,AVA,GEN}#{id} / HOME   → the home user (none: an unknown id, 404)
    GetItem PRJ#{pid} / M#{caller}      → ConsistentRead, so a member removed a moment ago is refused
                                          on their very next request (none: 404, as for an unknown id)
    role below the route's minimum      → 403 `forbidden` (a member may know the project exists)

and the route runs once more with the home user's id: 4 calls in all for a member's read.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.errors import ForbiddenError
from chalicelib.teams import store
from chalicelib.teams.service import RANK, allows

# Which HOME item a path parameter names.
KINDS = {"project_id": "project", "avatar_id": "avatar", "generation_id": "generation", "share_id": "share"}


@dataclass(frozen=True)
class Access:
    caller: str
    home: str
    role: str
    project_id: str


def target(params: dict) -> tuple[str, str] | None:
    """(kind, id) of the shared object a route's path names, or None when it names none."""
    for name, kind in KINDS.items():
        if isinstance(params.get(name), str):
            return kind, params[name]
    return None


def resolve(kind: str, item_id: str, caller: str, minimum: str) -> Access | None:
    """The caller's access to someone else's object, or None when the caller has none (the route's own
    404 stands: not a member, removed, unknown id, or the caller's own object really missing)."""
    home_item = store.item_home(kind, item_id)
    if home_item is None or home_item.home == caller:
        return None
    project_id = item_id if kind == "project" else home_item.project_id
    member = store.membership(project_id, caller)
    if member is None or member.role not in RANK:
        return None
    if not allows(member.role, minimum):
        raise ForbiddenError(f"Your role in this project ({member.role}) does not allow this; it needs {minimum}",
                             details={"role": member.role, "required": minimum, "projectId": project_id})
    return Access(caller=caller, home=home_item.home, role=member.role, project_id=project_id)
