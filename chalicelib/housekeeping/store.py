"""The sweeper's data access: the sweep index (GSI3) and where the walk over the bucket stopped.

    GSI3 SWEEP#{0..3} / {deadline}#{PK}   every item that must end by a deadline: active generations,
                                          uploading and deleting avatars, project tombstones, the HOME
                                          item of a project whose HOME backfill is pending (issue 30)
    SWEEPER / FILES                       the last key the walk over the derived files looked at

The items the index points at are read and changed through their own aggregate's store.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist

from chalicelib.aws.models import META, SWEEP_SHARDS, AvatarModel, SweeperStateModel


@dataclass(frozen=True)
class Overdue:
    """An item past its deadline: its key, what it is (`tombstone`, `generation`, `avatar`, `backfill`
    or `other`), whose it is and its id (a project id for a tombstone or a backfill)."""
    pk: str
    sk: str
    kind: str
    user_id: str
    item_id: str


def _overdue(pk: str, sk: str) -> Overdue:
    if pk.startswith("PRJ#") and sk == "HOME":  # a shared project's HOME backfill (issue 30)
        return Overdue(pk, sk, "backfill", "", pk.removeprefix("PRJ#"))
    if sk.startswith("DELETING#"):
        return Overdue(pk, sk, "tombstone", pk.removeprefix("U#"), sk.removeprefix("DELETING#"))
    for kind, marker in (("generation", "#G#"), ("avatar", "#A#")):
        head, found, item_id = pk.rpartition(marker)
        if found and sk == META:
            return Overdue(pk, sk, kind, head.removeprefix("U#"), item_id)
    return Overdue(pk, sk, "other", "", "")


def overdue(now: str, *, limit: int) -> list[Overdue]:
    """The items whose deadline is at or before `now`: one Query per SWEEP# shard of GSI3 (keys only),
    up to `limit` each, oldest first."""
    bound = now + "~"  # "{deadline}#{pk}" sorts below this for every deadline ≤ now
    found = []
    for shard in range(SWEEP_SHARDS):
        for item in AvatarModel.by_deadline.query(f"SWEEP#{shard}", AvatarModel.sweep_sk < bound, limit=limit):
            found.append(_overdue(item.pk, item.sk))
    return found


def walk_position() -> str | None:
    """The last key the walk looked at (consistent GetItem SWEEPER / FILES); None: from the start."""
    try:
        return SweeperStateModel.get("SWEEPER", "FILES", consistent_read=True).after
    except DoesNotExist:
        return None


def save_walk_position(after: str | None, *, now: str) -> None:
    """PutItem SWEEPER / FILES: where the next run goes on (None: start over)."""
    SweeperStateModel(after=after, updated_at=now).save()
