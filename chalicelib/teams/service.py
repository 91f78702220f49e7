"""Team projects (issue 30): members, their roles, and the rules every change of them keeps.

Roles rank `viewer` < `editor` < `owner`. The project's creator (its *home*: the user whose partition
holds its data) is an owner by definition and has no membership item; they cannot leave or be
demoted, so a project always keeps an owner. `ownerCount` on PRJ#{pid}/HOME counts the owner
memberships plus the home user and refuses (in the same transaction) any change that would leave it
below one. At most MAX_MEMBERS memberships (`memberCount`, checked in the add's transaction).

Every change is one transaction conditional on what it read (the role), so a double click, two
owners at once or a removal racing a role change each end in one consistent state.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib import clock
from chalicelib.aws.db import Transaction, TransactionCancelled
from chalicelib.errors import ConflictError, DependencyError, ForbiddenError, NotFoundError
from chalicelib.observability import logger
from chalicelib.projects import store as project_store
from chalicelib.teams import store

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import MembershipModel, ProjectModel

ROLES = ("viewer", "editor", "owner")
RANK = {role: i for i, role in enumerate(ROLES)}
MAX_MEMBERS = 50
BACKFILL_MESSAGE = "project.backfill_homes"
BACKFILL_BATCH = 100
BACKFILL_GRACE_SECONDS = 300  # a backfill making no step for this long is started again by the sweeper


def allows(role: str | None, minimum: str) -> bool:
    return role in RANK and RANK[role] >= RANK[minimum]


def member_json(member: "MembershipModel") -> dict:
    return {"userId": member.user_id, "role": member.role, "addedBy": member.added_by, "addedAt": member.added_at,
            "home": False}


def home_json(home: str, project: "ProjectModel") -> dict:
    return {"userId": home, "role": "owner", "addedBy": home, "addedAt": project.created_at, "home": True}


def _member_not_found(user_id: str) -> NotFoundError:
    return NotFoundError("This user is not a member of the project", code="not_found", details={"userId": user_id})


def _home_refusal(user_id: str) -> ConflictError:
    return ConflictError("The project's creator is always one of its owners: delete the project instead",
                         code="home_owner", details={"userId": user_id})


def _check_actor(tx: Transaction, home: str, project_id: str, actor: str) -> None:
    if actor != home:  # the home user is an owner without a membership item
        store.require_role(tx, project_id, actor, ("owner",), name="actor")


def _actor_refused(cancelled: TransactionCancelled) -> None:
    if cancelled.failed("actor"):
        raise ForbiddenError("Only an owner of the project can manage its members") from None
    if cancelled.failed("project"):
        raise NotFoundError("Project not found") from None


def list_members(home: str, project: "ProjectModel") -> list[dict]:
    """The home owner first, then every member (one Query, <= 50)."""
    return [home_json(home, project)] + [member_json(m) for m in store.members(project.id)]


def add_member(connection: Any, sqs: Any, cleanup_queue_url: str | None, *, home: str, project_id: str,
               actor: str, user_id: str, role: str) -> tuple["MembershipModel", bool]:
    """Add `user_id` with `role`. Returns (membership, created); the same add again (a double click, a
    retry) answers the membership it made, created False. Another role for an existing member: 409."""
    if user_id == home:
        raise ConflictError("The project's creator is already an owner", code="already_member",
                            details={"userId": user_id})
    existing = store.membership(project_id, user_id)
    if existing is not None:
        return _same_or_conflict(existing, role)
    team = store.project_home(project_id)
    # A project from before teams: its avatars and generations get HOME items (in the sweep index
    # until done).
    backfill = _backfill_deadline() if team is None else None
    now = clock.now_iso()
    member = store.new_membership(project_id, user_id, home=home, role=role, added_by=actor, now=now)
    try:
        with Transaction(connection) as tx:
            project_store.require(tx, home, project_id)
            _check_actor(tx, home, project_id, actor)
            store.add_membership(tx, member)
            store.count_members(tx, project_id, home, members=1, owners=1 if role == "owner" else 0,
                                limit=MAX_MEMBERS, backfill=backfill)
    except TransactionCancelled as cancelled:
        _actor_refused(cancelled)
        if cancelled.failed("member"):
            current = store.membership(project_id, user_id)
            if current is not None:
                return _same_or_conflict(current, role)
        if cancelled.failed("home"):
            raise ConflictError(f"A project has at most {MAX_MEMBERS} members", code="member_limit",
                                details={"limit": MAX_MEMBERS}) from None
        if cancelled.conflict:
            raise DependencyError("The member could not be added; please try again") from None
        raise
    if backfill:
        send_backfill(sqs, cleanup_queue_url, home, project_id)
    return member, True


def _same_or_conflict(existing: "MembershipModel", role: str) -> tuple["MembershipModel", bool]:
    if existing.role == role:
        return existing, False
    raise ConflictError("This user is already a member with another role; change their role instead",
                        code="already_member", details={"userId": existing.user_id, "role": existing.role})


def change_role(connection: Any, *, home: str, project_id: str, actor: str, user_id: str,
                role: str) -> "MembershipModel":
    if user_id == home:
        raise _home_refusal(user_id)
    member = store.membership(project_id, user_id)
    if member is None:
        raise _member_not_found(user_id)
    if member.role == role:
        return member
    owners = (1 if role == "owner" else 0) - (1 if member.role == "owner" else 0)
    try:
        with Transaction(connection) as tx:
            _check_actor(tx, home, project_id, actor)
            store.change_role(tx, project_id, user_id, was=member.role, role=role, now=clock.now_iso())
            if owners:
                store.count_members(tx, project_id, home, members=0, owners=owners, limit=MAX_MEMBERS)
    except TransactionCancelled as cancelled:
        _actor_refused(cancelled)
        if cancelled.failed("home"):
            raise ConflictError("A project keeps at least one owner", code="last_owner") from None
        if cancelled.failed("member") or cancelled.conflict:
            raise ConflictError("The membership changed meanwhile; read it again", code="conflict") from None
        raise
    return store.membership(project_id, user_id) or member


def remove_member(connection: Any, *, home: str, project_id: str, actor: str, actor_role: str,
                  user_id: str) -> None:
    """Remove a member (an owner's act) or leave (a member removing themselves, any role)."""
    if user_id == home:
        raise _home_refusal(user_id)
    if actor != user_id and not allows(actor_role, "owner"):
        raise ForbiddenError("Only an owner of the project can remove other members")
    member = store.membership(project_id, user_id)
    if member is None:
        raise _member_not_found(user_id)
    try:
        with Transaction(connection) as tx:
            if actor != user_id:
                _check_actor(tx, home, project_id, actor)
            store.remove_membership(tx, project_id, user_id, was=member.role)
            store.count_members(tx, project_id, home, members=-1, owners=-1 if member.role == "owner" else 0,
                                limit=MAX_MEMBERS)
    except TransactionCancelled as cancelled:
        _actor_refused(cancelled)
        if cancelled.failed("home"):
            raise ConflictError("A project keeps at least one owner", code="last_owner") from None
        if cancelled.failed("member"):
            if store.membership(project_id, user_id) is None:
                return  # removed meanwhile (a double click): the outcome asked for
            raise ConflictError("The membership changed meanwhile; read it again", code="conflict") from None
        if cancelled.conflict:
            raise DependencyError("The member could not be removed; please try again") from None
        raise


def shared_with_me(user_id: str, *, limit: int,
                   start_key: dict | None) -> tuple[list[tuple["MembershipModel", "ProjectModel"]], dict | None]:
    """Projects shared with `user_id`, newest membership first, with the membership (the role): one
    Query of the memberships + one BatchGetItem of their projects (a project being deleted is left out)."""
    page, last_key = store.shared_with(user_id, limit=limit, start_key=start_key)
    found = store.projects_of(page)
    return [(m, found[m.project_id]) for m in page if m.project_id in found], last_key


# ---- the purge and the backfill (cleanup queue) ------------------------------------------------

def purge_team(project_id: str) -> int:
    """The purge's team step: the PRJ#{pid} partition (HOME and memberships). Idempotent."""
    return store.delete_partition(project_id)


def send_backfill(sqs: Any, queue_url: str | None, home: str, project_id: str, start_key: dict | None = None) -> None:
    if not queue_url:
        logger.error("cleanup queue not configured: HOME backfill not started", extra={"projectId": project_id})
        return
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(
        {"type": BACKFILL_MESSAGE, "userId": home, "projectId": project_id, "startKey": start_key}))


def _backfill_deadline() -> str:
    from datetime import timedelta

    return clock.iso(clock.now() + timedelta(seconds=BACKFILL_GRACE_SECONDS))


def backfill_step(home: str, project_id: str, start_key: dict | None) -> dict | None:
    """Write the HOME items of up to BACKFILL_BATCH of a project's avatars and generations (idempotent
    puts); returns where the next step starts (its deadline moved on), or None when the project is
    done (the mark and its sweep entry cleared)."""
    found, last_key = store.project_items_page(home, project_id, limit=BACKFILL_BATCH, start_key=start_key)
    for kind in ("avatar", "generation"):
        store.put_item_homes(kind, [(item_id, home, project_id) for k, item_id in found if k == kind])
    if last_key is None:
        store.end_backfill(project_id)
    else:
        store.backfill_due(project_id, deadline=_backfill_deadline())
    return last_key


def resend_backfill(sqs: Any, queue_url: str | None, project_id: str) -> bool:
    """The sweeper found a backfill that made no step for a grace period (its message was lost): start
    it again from the first item (the puts are idempotent). False when it is no longer pending."""
    team = store.project_home(project_id, consistent=True)
    if team is None or team.backfill != "pending":
        return False
    if not store.backfill_due(project_id, deadline=_backfill_deadline()):
        return False
    send_backfill(sqs, queue_url, team.home, project_id)
    return True
