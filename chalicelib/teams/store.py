"""The teams' data access: memberships and the HOME items that say where a shared id's data lives.

    PRJ#{pid}   / HOME     the project's home user, memberCount (<= 50), ownerCount (owners + home)
    PRJ#{pid}   / M#{uid}  a membership (role)        GSI1: U#{uid}#SHARED / {addedAt}#{pid}
    AVA#{aid}   / HOME     an avatar's home user and project
    GEN#{gid}   / HOME     a generation's home user, project and who started it
    SHR#{sid}   / HOME     a share link's home user and project (with the link's TTL)

The rules (chalicelib.teams.service) decide what changes; these operations say how. Operations that
take a `Transaction` add one named item ("home", "member", …) and the caller reads
`TransactionCancelled.reasons` by that name.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from pynamodb.exceptions import DoesNotExist

from chalicelib.aws.db import query_page, update_if
from chalicelib.aws.models import (
    HOME,
    AvatarModel,
    ItemHomeModel,
    MembershipModel,
    ProjectHomeModel,
    ProjectModel,
    avatar_home_pk,
    generation_home_pk,
    share_home_pk,
    project_items_pk,
    project_sk,
    shared_with_pk,
    sweep_pk,
    sweep_sk,
    team_pk,
    user_pk,
)

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction

# The membership partition is read whole (members page, purge): one page holds it all.
PARTITION_LIMIT = 60
_ITEM_HOME_PK = {"avatar": avatar_home_pk, "generation": generation_home_pk, "share": share_home_pk,
                 "project": team_pk}


# ---- HOME items -------------------------------------------------------------------------------

def add_project_home(tx: "Transaction", project_id: str, home: str, *, now: str, name: str = "home") -> None:
    """Put PRJ#{pid}/HOME (no members yet), condition: none exists."""
    tx.save(name, ProjectHomeModel(team_pk(project_id), HOME, home=home, project_id=project_id, member_count=0,
                                   owner_count=1, created_at=now),
            condition=ProjectHomeModel.pk.does_not_exist())


def add_item_home(tx: "Transaction", kind: str, item_id: str, home: str, project_id: str, *,
                  started_by: str | None = None, ttl: int | None = None, name: str) -> None:
    """Put AVA#/GEN#/SHR#{id}/HOME (unconditional: it never changes, so a repeat is the same item)."""
    tx.save(name, ItemHomeModel(_ITEM_HOME_PK[kind](item_id), HOME, home=home, project_id=project_id,
                                started_by=started_by, ttl=ttl))


def item_home(kind: str, item_id: str) -> ItemHomeModel | ProjectHomeModel | None:
    """GetItem {PRJ,AVA,GEN}#{id} / HOME: where the id's data lives; None when it has no HOME item."""
    model = ProjectHomeModel if kind == "project" else ItemHomeModel
    try:
        return model.get(_ITEM_HOME_PK[kind](item_id), HOME)
    except DoesNotExist:
        return None


def put_item_homes(kind: str, items: Iterable[tuple[str, str, str]]) -> int:
    """BatchWriteItem of HOME items (id, home, project) — the backfill; idempotent puts."""
    count = 0
    with ItemHomeModel.batch_write() as batch:
        for item_id, home, project_id in items:
            batch.save(ItemHomeModel(_ITEM_HOME_PK[kind](item_id), HOME, home=home, project_id=project_id))
            count += 1
    return count


def delete_item_home(tx: "Transaction", kind: str, item_id: str, *, name: str = "item home") -> None:
    """Delete AVA#/GEN#{id}/HOME in the transaction that deletes its item (unconditional: older items
    have none)."""
    tx.delete(name, ItemHomeModel(_ITEM_HOME_PK[kind](item_id), HOME))


def delete_item_homes(kind: str, item_ids: Iterable[str]) -> None:
    """BatchWriteItem deletes of HOME items (gone already is fine)."""
    with ItemHomeModel.batch_write() as batch:
        for item_id in item_ids:
            batch.delete(ItemHomeModel(_ITEM_HOME_PK[kind](item_id), HOME))


def project_items_page(home: str, project_id: str, *, limit: int,
                       start_key: dict | None) -> tuple[list[tuple[str, str]], dict | None]:
    """The backfill's walk: one Query of GSI1 U#{home}#P#{pid} (avatars A#… and generations G#…), keys
    only as (kind, id)."""
    # AvatarModel's connection: its model declares GSI1, which the low-level query needs to know.
    result = AvatarModel._get_connection().query(
        project_items_pk(home, project_id), index_name="GSI1", limit=limit, exclusive_start_key=start_key,
        attributes_to_get=None)
    found = []
    for raw in result.get("Items", []):
        sk = raw.get("GSI1SK", {}).get("S", "")
        if sk.startswith("A#"):
            found.append(("avatar", sk[2:]))
        elif sk.startswith("G#"):
            found.append(("generation", sk[2:]))
    return found, result.get("LastEvaluatedKey")


def project_home(project_id: str, *, consistent: bool = False) -> ProjectHomeModel | None:
    """GetItem PRJ#{pid}/HOME."""
    try:
        return ProjectHomeModel.get(team_pk(project_id), HOME, consistent_read=consistent)
    except DoesNotExist:
        return None


def _backfill_sweep(project_id: str, deadline: str) -> list:
    P, pk = ProjectHomeModel, team_pk(project_id)
    return [P.sweep_pk.set(sweep_pk(pk)), P.sweep_sk.set(sweep_sk(deadline, pk))]


def backfill_due(project_id: str, *, deadline: str) -> bool:
    """UpdateItem: the backfill's sweep deadline moved on to `deadline`, condition: still pending."""
    return update_if(ProjectHomeModel(team_pk(project_id), HOME), _backfill_sweep(project_id, deadline),
                     ProjectHomeModel.backfill == "pending")


def end_backfill(project_id: str) -> bool:
    """UpdateItem: backfill and its sweep index entry removed, condition: the HOME item exists."""
    P = ProjectHomeModel
    return update_if(P(team_pk(project_id), HOME), [P.backfill.remove(), P.sweep_pk.remove(), P.sweep_sk.remove()],
                     P.pk.exists())


def count_members(tx: "Transaction", project_id: str, home: str, *, members: int, owners: int, limit: int,
                  backfill: str | None = None, name: str = "home") -> None:
    """UpdateItem PRJ#{pid}/HOME: memberCount += `members`, ownerCount += `owners`, created when a project
    from before teams has none (home = `home`, one owner; `backfill`: the deadline by which its HOME
    backfill must have moved on, in the sweep index). Conditions: the home is `home`; on an add,
    memberCount < `limit`; when an owner goes, ownerCount > 1 (the last owner stays)."""
    P = ProjectHomeModel
    actions = [P.home.set(P.home | home), P.project_id.set(P.project_id | project_id),
               P.member_count.set((P.member_count | 0) + members), P.owner_count.set((P.owner_count | 1) + owners)]
    if backfill:
        actions += [P.backfill.set("pending"), *_backfill_sweep(project_id, backfill)]
    condition = P.home.does_not_exist() | (P.home == home)
    if members > 0:
        condition &= P.member_count.does_not_exist() | (P.member_count < limit)
    if owners < 0:
        condition &= P.owner_count > 1
    tx.update(name, P(team_pk(project_id), HOME), actions=actions, condition=condition)


def delete_project_home(tx: "Transaction", project_id: str, *, name: str = "team") -> None:
    """Delete PRJ#{pid}/HOME (unconditional: a project from before teams may have none)."""
    tx.delete(name, ProjectHomeModel(team_pk(project_id), HOME))


# ---- memberships ------------------------------------------------------------------------------

def membership(project_id: str, user_id: str) -> MembershipModel | None:
    """GetItem PRJ#{pid}/M#{uid}, ConsistentRead: a member removed a moment ago is refused on their next
    request."""
    try:
        return MembershipModel.get(team_pk(project_id), f"M#{user_id}", consistent_read=True)
    except DoesNotExist:
        return None


def new_membership(project_id: str, user_id: str, *, home: str, role: str, added_by: str,
                   now: str) -> MembershipModel:
    return MembershipModel(team_pk(project_id), f"M#{user_id}", gsi1pk=shared_with_pk(user_id),
                           gsi1sk=f"{now}#{project_id}", project_id=project_id, user_id=user_id, home=home,
                           role=role, added_by=added_by, added_at=now, updated_at=now)


def add_membership(tx: "Transaction", member: MembershipModel, *, name: str = "member") -> None:
    """Put the membership, condition: the user is not a member yet."""
    tx.save(name, member, condition=MembershipModel.pk.does_not_exist())


def require_role(tx: "Transaction", project_id: str, user_id: str, roles: tuple[str, ...], *,
                 name: str = "actor") -> None:
    """ConditionCheck: `user_id` is a member with one of `roles` (checked in the write it allows)."""
    tx.condition_check(name, MembershipModel, team_pk(project_id), f"M#{user_id}",
                       condition=MembershipModel.role.is_in(*roles))


def change_role(tx: "Transaction", project_id: str, user_id: str, *, was: str, role: str, now: str,
                name: str = "member") -> None:
    """UpdateItem role, condition: the membership still has the role it was read with."""
    tx.update(name, MembershipModel(team_pk(project_id), f"M#{user_id}"),
              actions=[MembershipModel.role.set(role), MembershipModel.updated_at.set(now)],
              condition=MembershipModel.role == was)


def remove_membership(tx: "Transaction", project_id: str, user_id: str, *, was: str, name: str = "member") -> None:
    """Delete the membership, condition: it still has the role it was read with."""
    tx.delete(name, MembershipModel(team_pk(project_id), f"M#{user_id}"), condition=MembershipModel.role == was)


def members(project_id: str) -> list[MembershipModel]:
    """Query PK=PRJ#{pid}, SK begins_with M#: every member (<= 50), one page."""
    items, _ = query_page(MembershipModel, team_pk(project_id), limit=PARTITION_LIMIT, newest_first=False,
                          range_key_condition=MembershipModel.sk.startswith("M#"))
    return items


def shared_with(user_id: str, *, limit: int, start_key: dict | None) -> tuple[list[MembershipModel], dict | None]:
    """The projects shared with a user, newest first: one Query of GSI1 U#{uid}#SHARED."""
    return query_page(MembershipModel, shared_with_pk(user_id), limit=limit, start_key=start_key,
                      index=MembershipModel.by_member)


def projects_of(memberships: list[MembershipModel]) -> dict[str, ProjectModel]:
    """The home projects of these memberships, by project id: one BatchGetItem (<= 100 keys)."""
    keys = [(user_pk(m.home), project_sk(m.project_id)) for m in memberships]
    return {p.id: p for p in ProjectModel.batch_get(keys)} if keys else {}


def delete_partition(project_id: str) -> int:
    """The purge's step: every item of PRJ#{pid} (HOME and <= 50 memberships; one Query) deleted with
    BatchWriteItem. Returns how many there were."""
    result = ProjectHomeModel._get_connection().query(team_pk(project_id), limit=PARTITION_LIMIT,
                                                      consistent_read=True)
    keys = [(raw["PK"]["S"], raw["SK"]["S"]) for raw in result.get("Items", [])]
    with MembershipModel.batch_write() as batch:
        for pk, sk in keys:
            batch.delete(MembershipModel(pk, sk))
    return len(keys)


def from_stream_image(image: dict) -> MembershipModel:
    """A membership as a stream record's image carries it (no call)."""
    return MembershipModel.from_raw_data(image)
