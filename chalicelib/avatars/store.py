"""The avatar items' data access (`U#{uid}#A#{aid}` / META), by name."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.aws.models import META, AvatarModel, avatar_pk

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction


# ---- used by generation / usage / events

def add_generated(tx: "Transaction", avatar: AvatarModel, *, name: str = "avatar") -> None:
    """Transaction item `name`: Put a new avatar (condition: it does not exist — its id derives from the
    job and the image, so a second run's copy of the same image is refused)."""
    tx.save(name, avatar, condition=AvatarModel.pk.does_not_exist())


def read_many(user_id: str, avatar_ids: list[str]) -> dict[str, AvatarModel]:
    """The user's avatars with these ids that exist, by id: one BatchGetItem (≤ 100 keys)."""
    return {a.id: a for a in AvatarModel.batch_get([(avatar_pk(user_id, i), META) for i in avatar_ids])}


def _not_newer(attr: Any, moment: str) -> Any:
    """`lastUsedAt` only moves forward: canonical UTC timestamps compare correctly as strings."""
    return attr.does_not_exist() | (attr <= moment)


def count_uses(tx: "Transaction", name: str, user_id: str, avatar_id: str, *, uses: int,
               last_used_at: str | None = None) -> None:
    """Transaction item `name`: ADD usageCount `uses` (condition: the avatar exists and is `ready` —
    its key holds the user id, so this is also the ownership check); with `last_used_at`, SET lastUsedAt
    too, conditional on the stored one not being newer."""
    actions = [AvatarModel.usage_count.add(uses)]
    condition = AvatarModel.pk.exists() & (AvatarModel.status == "ready")
    if last_used_at is not None:
        actions.append(AvatarModel.last_used_at.set(last_used_at))
        condition = condition & _not_newer(AvatarModel.last_used_at, last_used_at)
    tx.update(name, AvatarModel(avatar_pk(user_id, avatar_id), META), actions=actions, condition=condition)


def from_stream_image(image: dict) -> AvatarModel:
    """An avatar item as a stream record's image carries it (no call)."""
    return AvatarModel.from_raw_data(image)
