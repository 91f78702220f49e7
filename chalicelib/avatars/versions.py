"""Version history of an avatar (issue 29): every change of its name, persona, attributes or crop is
a numbered version, written in the same transaction as the change.

    edit_avatar(user, avatar, changes, connection=…)   PUT /avatars/{id}: the edit and its version
    snapshot(avatar)                     the versioned fields as the API spells them
    changes_between(before, after)       {field: {before, after}} of the fields that differ
    commit(user, avatar, plan, …)        the change + version n + 1 (+ the drop of n − 99) in one transaction
    list_versions(user, avatar, …)       newest first, one Query
    restore(user, avatar, n, …)          version n's fields as a new version (none when already so)
    derivatives(user, avatar) / source   lineage: the avatars made from it, the one it was made from

Numbers: the avatar's `versionCount` is the newest number. A change reads it (n), and its transaction
sets it to n + 1 conditional on it still being n, and puts `V#{n+1}` with `attribute_not_exists`: two
concurrent changes can never take the same number, and the loser reads again and is applied on top
(so each version's `before` is exactly the previous version's `after`). Only the newest KEEP are kept:
writing n + 1 deletes n + 1 − KEEP in the same transaction — one extra item per write, never a sweep.

The functions take the owner's user id first (the key of every item) and who acted (`actor`) apart,
so a member of a shared project (issue 30) can act on the owner's avatar and be named as the author.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from chalicelib import clock
from chalicelib.avatars import store, vocabulary
from chalicelib.aws.db import Transaction, TransactionCancelled
from chalicelib.errors import ConflictError, DependencyError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import AvatarModel, AvatarVersionModel

KEEP = 100
MAX_NUMBER = 99_999_999  # V#{n:08d}
_ATTEMPTS = 8  # concurrent changes of one avatar: each loser reads again and goes on top

# Causes and the route each comes through (the route template, as the OpenAPI document names it).
EDIT = ("edit", "PUT /avatars/{avatar_id}")
SUGGESTION_ACCEPT = ("suggestion_accept", "POST /avatars/{avatar_id}/suggestions/accept")
RESTORE = ("restore", "POST /avatars/{avatar_id}/versions/{version}/restore")


def snapshot(avatar: "AvatarModel") -> dict:
    """The versioned fields of an avatar, as the API spells them (persona and attributes field by field)."""
    from chalicelib.avatars import service
    from chalicelib.avatars.crops import crop_json

    return {"name": avatar.name, **service.persona_fields(avatar), **service.attribute_fields(avatar),
            "crop": crop_json(avatar)}


def changes_between(before: dict, after: dict) -> dict:
    """{field: {"before", "after"}} of every field whose value differs (an empty list equals none)."""
    def norm(value: Any) -> Any:
        return None if value in ([], "") else value
    return {k: {"before": norm(before.get(k)), "after": norm(after.get(k))}
            for k in after if norm(before.get(k)) != norm(after.get(k))}


@dataclass(frozen=True)
class Change:
    """What a change does to the avatar item (store.edit's keywords) and the state it leaves."""
    edits: dict
    after: dict


def commit(user_id: str, avatar_id: str, plan: Callable[["AvatarModel"], Change | None], *, connection: Any,
           actor: str | None, cause: tuple[str, str], restored_from: int | None = None,
           write: Callable[..., None] | None = None) -> tuple["AvatarModel", "AvatarVersionModel | None"]:
    """Apply a change and record it as the next version, in one transaction.

    `plan(avatar)` is called on a fresh consistent read and returns the change to make (None: nothing
    to change: no write, no version). `write(tx, avatar, now, version, change)` adds the avatar's update
    (default: store.edit of `change.edits`); it must be conditional on the version read. Another change
    meanwhile → read again and plan again. Returns the avatar (read again after a change) and the
    version written (None when nothing changed). 404 when the avatar is (or goes) missing."""
    from chalicelib.avatars import service

    for _ in range(_ATTEMPTS):
        avatar = service.get_avatar(user_id, avatar_id, consistent=True)
        change = plan(avatar)
        if change is None:
            return avatar, None
        before = snapshot(avatar)
        diff = changes_between(before, change.after)
        if not diff:
            return avatar, None
        number = int(avatar.version_count or 0) + 1
        if number > MAX_NUMBER:
            raise ConflictError("This avatar has reached the last version number", code="version_limit")
        now = clock.now_iso()
        version = store.new_version(user_id, avatar_id, number, at=now, by=actor or user_id, cause=cause[0],
                                    route=cause[1], restored_from=restored_from,
                                    changes=json.dumps(diff, separators=(",", ":")),
                                    state=json.dumps(change.after, separators=(",", ":")))
        try:
            with Transaction(connection) as tx:
                if write is None:
                    store.edit(tx, avatar, now=now, version=number, **change.edits)
                else:
                    write(tx, avatar, now, number, change)
                store.add_version(tx, version)
                if number > KEEP:
                    store.drop_version(tx, user_id, avatar_id, number - KEEP)
        except TransactionCancelled as cancelled:
            if cancelled.failed("avatar") or cancelled.failed("version") or cancelled.conflict:
                continue  # changed, deleted or raced meanwhile: read again
            raise
        return store.reread(avatar) or avatar, version  # the answer shows the change as stored
    service.get_avatar(user_id, avatar_id, consistent=True)  # deleted meanwhile: 404
    raise DependencyError("The avatar is being changed by several requests at once; try again")


def edit_avatar(user_id: str, avatar_id: str, changes: dict, *, connection: Any,
                actor: str | None = None) -> tuple["AvatarModel", "AvatarVersionModel | None"]:
    """Partial edit of name, persona, attributes and crop (a field set to null clears it; a null name is
    ignored), recorded as a version when anything changed. A crop change is only recorded here
    (chalicelib.avatars.crops); the caller asks the worker for the thumbnail."""
    return commit(user_id, avatar_id, lambda avatar: plan_fields(avatar, changes), connection=connection,
                  actor=actor, cause=EDIT)


# ---- reads ----------------------------------------------------------------------------------------

def version_json(version: "AvatarVersionModel") -> dict:
    return {"version": int(version.number), "at": version.at, "by": version.by, "cause": version.cause,
            "route": version.route,
            "restoredFrom": int(version.restored_from) if version.restored_from is not None else None,
            "changes": json.loads(version.changes), "state": json.loads(version.state)}


def list_versions(user_id: str, avatar_id: str, *, limit: int,
                  start_key: dict | None) -> tuple[list["AvatarVersionModel"], dict | None]:
    """Newest first: a GetItem of the avatar (another user's or a deleted one: 404) and one Query."""
    from chalicelib.avatars import service

    service.get_avatar(user_id, avatar_id)
    return store.versions_page(user_id, avatar_id, limit=limit, start_key=start_key)


def restore(user_id: str, avatar_id: str, number: int, *, connection: Any,
            actor: str | None = None) -> tuple["AvatarModel", "AvatarVersionModel | None"]:
    """Set the avatar's versioned fields to those of version `number`, recorded as a new version
    (`cause` restore, `restoredFrom` n). When the avatar already is in that state nothing is written
    and the version is None: a double click restores once, the second answer is the same avatar.
    404 (`version_not_found`) for a version that does not exist or fell out of the newest KEEP; 409
    when the version's crop can't be set (the image is not ready)."""
    from chalicelib.avatars import service

    service.get_avatar(user_id, avatar_id)  # another user's avatar: 404 before anything else
    version = store.get_version(user_id, avatar_id, number)
    if version is None:
        raise NotFoundError("Version not found", code="version_not_found",
                            details={"avatarId": avatar_id, "version": number})
    target = json.loads(version.state)
    return commit(user_id, avatar_id, lambda avatar: plan_fields(avatar, target), connection=connection,
                  actor=actor, cause=RESTORE, restored_from=number)


def plan_fields(avatar: "AvatarModel", fields: dict) -> Change | None:
    """The change that sets the API fields given (name, persona*, attributes, crop; null clears one,
    a field left out keeps its value): store.edit's keywords and the state it leaves."""
    from chalicelib.avatars import service
    from chalicelib.avatars.crops import crop_changed

    current = snapshot(avatar)
    edits: dict[str, Any] = {}
    if "crop" in fields and crop_changed(avatar, fields["crop"]):
        edits["crop"] = fields["crop"]
    if fields.get("name") is not None and fields["name"] != avatar.name:
        edits["name"] = fields["name"]
    after = {**current}
    persona_keys = [k for k in service.PERSONA_FIELDS if k in fields]
    if persona_keys:
        merged = {**service.persona_fields(avatar), **{k: fields[k] for k in persona_keys}}
        edits["persona"] = service.persona_from_fields(merged) or None
        after.update(merged)
    attribute_keys = [k for k in service.ATTRIBUTE_FIELDS if k in fields]
    if attribute_keys:
        merged = {**service.attribute_fields(avatar), **{k: fields[k] for k in attribute_keys}}
        edits["attributes"] = service.attributes_from_fields(merged) or None
        # as stored: one spelling per value (vocabulary), empty ones absent
        after.update({k: vocabulary.canonical(k, v) if v not in (None, "") else None for k, v in merged.items()})
    if "crop" in edits:
        after["crop"] = edits["crop"]
    if "name" in edits:
        after["name"] = edits["name"]
    if not changes_between(current, after):
        return None
    return Change(edits, after)


# ---- lineage --------------------------------------------------------------------------------------

DERIVATIVES_SHOWN = 20


def lineage_kind(avatar: "AvatarModel") -> str:
    """restyle (image-to-image from the source's image) or variation (a new image of its persona)."""
    return "restyle" if avatar.source_type == "image_to_image" else "variation"


def source_of(avatar: "AvatarModel") -> "AvatarModel | None":
    """The avatar this one was made from, when it still exists (one GetItem); None otherwise."""
    if not avatar.source_avatar_id:
        return None
    source = store.get(avatar.user_id, avatar.source_avatar_id)
    return source if source is not None and source.status != "deleting" else None


def derivatives(avatar: "AvatarModel") -> tuple[list["AvatarModel"], bool]:
    """The newest DERIVATIVES_SHOWN avatars made from this one, and whether there are more: one Query.
    Only a ready avatar can be restyled or varied, so one still uploading (the page polls it until it
    is ready) has none and costs no Query."""
    if avatar.status != "ready":
        return [], False
    return store.derivatives_page(avatar.user_id, avatar.id, limit=DERIVATIVES_SHOWN)
