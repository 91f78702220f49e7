"""Data access of share links: every PynamoDB expression on share, token and view-window items.

Keys (chalicelib/aws/models.py, docs/sharing.md):
    U#{uid}#S#{sid} / META          the share           GSI1 U#{uid}#A#{aid}#S / S#{sid} (the avatar's links)
    SHARE#{sha256 hex} / T          token → (uid, sid)  written with the share, never changed
    RATE#share-view#{client}#{t} / W  views of one client in the minute starting at epoch t (TTL)
"""
from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.aws.db import Transaction, TransactionCancelled, iterate_all, query_page, update_if
from chalicelib.aws.models import (
    META,
    AvatarModel,
    RateWindowModel,
    ShareModel,
    ShareTokenModel,
    avatar_pk,
    avatar_shares_pk,
    rate_window_pk,
    share_pk,
    share_token_pk,
)


class ShareExists(Exception):
    """A new share's id or token hash is already taken (never in practice: 80 and 256 random bits)."""


class AvatarNotReady(Exception):
    """The avatar stopped being ready (a delete began) between its read and the share's write."""


# ---- reads ------------------------------------------------------------------------------------

def get_share(user_id: str, share_id: str, *, consistent: bool = False) -> ShareModel | None:
    try:
        return ShareModel.get(share_pk(user_id, share_id), META, consistent_read=consistent)
    except DoesNotExist:
        return None


def get_token(token_hash: str) -> ShareTokenModel | None:
    try:
        return ShareTokenModel.get(share_token_pk(token_hash), "T")
    except DoesNotExist:
        return None


def get_avatar(user_id: str, avatar_id: str, *, consistent: bool = False) -> AvatarModel | None:
    """The shared avatar's item (one GetItem), or None."""
    try:
        return AvatarModel.get(avatar_pk(user_id, avatar_id), META, consistent_read=consistent)
    except DoesNotExist:
        return None


def list_shares(user_id: str, avatar_id: str, *, limit: int,
                start_key: dict | None) -> tuple[list[ShareModel], dict | None]:
    """One page of an avatar's links, newest first (share ids sort by creation time)."""
    return query_page(ShareModel, avatar_shares_pk(user_id, avatar_id), limit=limit, start_key=start_key,
                      index=ShareModel.by_avatar, range_key_condition=ShareModel.gsi1sk.startswith("S#"))


def count_active(user_id: str, avatar_id: str, now_iso: str) -> int:
    """Links of the avatar neither revoked nor expired (a COUNT Query; revoked and expired items leave
    the table by TTL some weeks after they end, so the partition stays small)."""
    return ShareModel.by_avatar.count(
        avatar_shares_pk(user_id, avatar_id), ShareModel.gsi1sk.startswith("S#"),
        filter_condition=ShareModel.revoked_at.does_not_exist() & (ShareModel.expires_at > now_iso))


# ---- writes -----------------------------------------------------------------------------------

def new_share(*, user_id: str, share_id: str, avatar_id: str, project_id: str, label: str | None,
              fields: list[str], token_hash: str, token_hint: str, now_iso: str, expires_iso: str,
              ttl: int) -> ShareModel:
    return ShareModel(share_pk(user_id, share_id), META, gsi1pk=avatar_shares_pk(user_id, avatar_id),
                      gsi1sk=f"S#{share_id}", id=share_id, user_id=user_id, avatar_id=avatar_id,
                      project_id=project_id, label=label, fields=list(fields), token_hash=token_hash,
                      token_hint=token_hint, created_at=now_iso, updated_at=now_iso, expires_at=expires_iso,
                      ttl=ttl)


def put_share(connection: Any, share: ShareModel, *, also: Any = None) -> None:
    """The share and its token item, both or neither, while the avatar is still ready: a delete that
    retires the avatar after this commits finds the share and removes it (delete_all_of_avatar).
    `also(tx)` adds the caller's items to the same transaction (the link's HOME item, issue 30)."""
    token = ShareTokenModel(share_token_pk(share.token_hash), "T", user_id=share.user_id, share_id=share.id,
                            ttl=share.ttl)
    try:
        with Transaction(connection) as tx:
            tx.condition_check("avatar", AvatarModel, avatar_pk(share.user_id, share.avatar_id), META,
                               condition=AvatarModel.status == "ready")
            tx.save("share", share, condition=ShareModel.pk.does_not_exist())
            tx.save("token", token, condition=ShareTokenModel.pk.does_not_exist())
            if also is not None:
                also(tx)
    except TransactionCancelled as cancelled:
        if cancelled.failed("avatar"):
            raise AvatarNotReady() from cancelled
        if cancelled.conditions_failed:
            raise ShareExists() from cancelled
        raise


def revoke(share: ShareModel, *, now_iso: str, reason: str, ttl: int) -> bool:
    """Mark the share revoked; False when it already was (or is gone)."""
    return update_if(share, [ShareModel.revoked_at.set(now_iso), ShareModel.revoked_reason.set(reason),
                             ShareModel.updated_at.set(now_iso), ShareModel.ttl.set(ttl)],
                     ShareModel.pk.exists() & ShareModel.revoked_at.does_not_exist())


def delete_all_of_avatar(user_id: str, avatar_id: str) -> int:
    """Remove every share item of the avatar (delete paths only). Token items stay until their TTL
    (the link's end + grace): a pointer to a share that is gone, so the link answers 410, not 404."""
    removed = 0
    with ShareModel.batch_write() as shares:
        for share in iterate_all(lambda key: ShareModel.by_avatar.query(
                avatar_shares_pk(user_id, avatar_id), ShareModel.gsi1sk.startswith("S#"),
                last_evaluated_key=key, page_size=100, attributes_to_get=["PK", "SK"])):
            shares.delete(ShareModel(share.pk, META))
            removed += 1
    return removed


def admit_view(client: str, window_start: int, limit: int, window_seconds: int) -> bool:
    """Count one view of `client` in its window; False once the window holds `limit` views."""
    window = RateWindowModel(rate_window_pk("share-view", client, window_start))
    return update_if(window, [RateWindowModel.count.add(1), RateWindowModel.ttl.set(window_start + window_seconds + 120)],
                     RateWindowModel.count.does_not_exist() | (RateWindowModel.count < limit))


def from_stream_image(image: dict) -> ShareModel:
    """A share item as a stream record's image carries it (no call)."""
    return ShareModel.from_raw_data(image)
