"""Events out: what a committed change of the table means to another app (docs/events.md).

Pure functions from one DynamoDB stream record (its keys, old and new image) to zero or more events
`{"id", "type", "timestamp", "data"}`. Nothing here talks to AWS: the stream handler
(chalicelib/handlers/stream.py) publishes what this returns.

The event id is a hash of the item's key, the type, the stream record's sequence number and the
fields that define the state change — never of the record's own eventID or arrival time. The
sequence number is unique per change of an item (a second failure after a retry is another record,
another number, another id) and the same in every read of that record, so a record that is retried,
replayed or read twice (two shards' iterators, a re-run from TRIM_HORIZON) yields the same id, and
receivers dedupe on it.
"""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable

AVATAR_READY = "avatar.ready"
AVATAR_REJECTED = "avatar.rejected"
AVATAR_UPDATED = "avatar.updated"
AVATAR_DELETED = "avatar.deleted"
GENERATION_COMPLETED = "generation.completed"
GENERATION_FAILED = "generation.failed"
GENERATION_CANCELLED = "generation.cancelled"
PROJECT_DELETED = "project.deleted"
WEBHOOK_TEST = "webhook.test"
AVATAR_SHARED = "avatar.shared"
AVATAR_SHARE_REVOKED = "avatar.share_revoked"
MEMBER_ADDED = "project.member_added"
MEMBER_REMOVED = "project.member_removed"

EVENT_TYPES = (AVATAR_READY, AVATAR_REJECTED, AVATAR_UPDATED, AVATAR_DELETED, GENERATION_COMPLETED,
               GENERATION_FAILED, GENERATION_CANCELLED, PROJECT_DELETED, WEBHOOK_TEST, AVATAR_SHARED,
               AVATAR_SHARE_REVOKED, MEMBER_ADDED, MEMBER_REMOVED)
SOURCE = "lumiku.avatar-creator"

# What a person or app sees of an avatar: a change of any of these on a ready avatar is `avatar.updated`.
# Counters (usageCount, lastUsedAt), bookkeeping (updatedAt, ttl, upload keys) are not.
AVATAR_TRACKED = ("name", "persona", "attributes", "crop", "imageKey", "thumbnailKey", "width", "height",
                  "format", "bytes")
# Fields the image work (crop, display copy) adds later count too, under these prefixes.
AVATAR_TRACKED_PREFIXES = ("crop", "display")
# Avatars an app has been told about: deleting one that never became ready or rejected says nothing.
ANNOUNCED_AVATAR = ("ready", "rejected")
GENERATION_FINAL = {"completed": GENERATION_COMPLETED, "failed": GENERATION_FAILED,
                    "cancelled": GENERATION_CANCELLED}


# ---- DynamoDB JSON ---------------------------------------------------------------------------

def plain(value: dict) -> Any:
    """One DynamoDB-JSON attribute value → Python (numbers as int or float)."""
    (kind, raw), = value.items()
    if kind == "S":
        return raw
    if kind == "N":
        number = float(raw)
        return int(number) if number.is_integer() and "e" not in raw.lower() and "." not in raw else number
    if kind == "BOOL":
        return bool(raw)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: plain(v) for k, v in raw.items()}
    if kind == "L":
        return [plain(v) for v in raw]
    if kind in ("SS", "BS"):
        return sorted(raw)
    if kind == "NS":
        return sorted(float(v) for v in raw)
    return raw  # B: base64 text as the stream carries it


def _image_value(image: dict | None, name: str) -> Any:
    if not image or name not in image:
        return None
    return plain(image[name])


def _kind(keys: dict) -> tuple[str, str, str] | None:
    """(kind, userId, resourceId) from the item's key, or None for items that are no resource."""
    pk, sk = _image_value(keys, "PK"), _image_value(keys, "SK")
    if not isinstance(pk, str) or not isinstance(sk, str):
        return None
    parts = pk.split("#")
    if len(parts) == 2 and parts[0] == "PRJ" and sk.startswith("M#"):
        # A membership (issue 30): its key names the project and the member, not the home user (that is
        # in the item: `user_of` reads it from the image).
        return "member", sk[2:], parts[1]
    if len(parts) == 2 and parts[0] == "U" and sk.startswith("P#"):
        return "project", parts[1], sk[2:]
    if len(parts) == 4 and parts[0] == "U" and sk == "META":
        if parts[2] == "A":
            return "avatar", parts[1], parts[3]
        if parts[2] == "G":
            return "generation", parts[1], parts[3]
        if parts[2] == "S":
            return "share", parts[1], parts[3]
    return None


# ---- ids and times ---------------------------------------------------------------------------

def event_id(event_type: str, keys: dict, fields: dict) -> str:
    """evt_ + 26 base32 characters of sha256(type, key, defining fields)."""
    canonical = json.dumps({"t": event_type, "k": {k: plain(v) for k, v in sorted(keys.items())}, "f": fields},
                           sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).digest()
    return "evt_" + base64.b32encode(digest[:16]).decode().rstrip("=").lower()


def _timestamp(record: dict, image: dict | None) -> str:
    """When the change happened: the item's updatedAt, else the stream record's creation time."""
    updated = _image_value(image, "updatedAt")
    if isinstance(updated, str) and updated:
        return updated
    approx = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    if isinstance(approx, (int, float)):
        dt = datetime.fromtimestamp(float(approx), tz=timezone.utc)
    elif isinstance(approx, datetime):
        dt = approx.astimezone(timezone.utc)
    else:  # a record without either is not one DynamoDB wrote; still give a stable answer
        return "1970-01-01T00:00:00.000Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# ---- resource shapes (as the API answers them, without presigned URLs) ------------------------

class _NoUrls:
    """A storage that presigns nothing: events outlive any URL, so `data` carries ids only."""

    def presigned_get(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_URL_FIELDS = ("imageUrl", "thumbnailUrl", "displayUrl", "url")


def avatar_data(image: dict) -> dict:
    from chalicelib.avatars import service as avatars
    from chalicelib.avatars import store as avatar_store

    data = avatars.to_json(avatar_store.from_stream_image(image), _NoUrls(), 0)
    for name in _URL_FIELDS:
        data.pop(name, None)
    data["userId"] = _image_value(image, "userId")
    return data


def generation_data(image: dict) -> dict:
    from chalicelib.generation import render
    from chalicelib.generation import store as generation_store

    data = render.to_json(generation_store.from_stream_image(image), None)
    data.pop("avatar", None)  # the API embeds the avatar with URLs; the event names it (avatarId)
    data["userId"] = _image_value(image, "userId")
    return data


def project_data(image: dict) -> dict:
    from chalicelib.projects import service as projects
    from chalicelib.projects import store as project_store

    data = projects.to_json(project_store.from_stream_image(image))
    data["userId"] = _image_value(image, "userId")
    return data


def member_data(image: dict) -> dict:
    """A membership as GET /projects/{id}/members lists it, plus the project and its home user."""
    return {"projectId": _image_value(image, "projectId"), "userId": _image_value(image, "userId"),
            "role": _image_value(image, "role"), "addedBy": _image_value(image, "addedBy"),
            "addedAt": _image_value(image, "addedAt"), "homeUserId": _image_value(image, "home")}


def share_data(image: dict) -> dict:
    """A share link as its owner lists it (never a token or its hash), plus userId."""
    from chalicelib.sharing import service as sharing
    from chalicelib.sharing import store as share_store

    share = share_store.from_stream_image(image)
    data = sharing.to_json(share)
    data.pop("status", None)  # depends on when it is read; revokedAt and expiresAt say it
    data["revokedReason"] = share.revoked_reason
    data["userId"] = _image_value(image, "userId")
    return data


# ---- the mapping -------------------------------------------------------------------------------

def _avatar_tracked(image: dict | None) -> dict:
    image = image or {}
    names = set(AVATAR_TRACKED) | {n for n in image if n.startswith(AVATAR_TRACKED_PREFIXES)}
    return {n: _image_value(image, n) for n in sorted(names)}


def _event(event_type: str, record: dict, keys: dict, fields: dict, image: dict | None, data: dict) -> dict:
    # One event per transition: the record's sequence number tells two equal changes apart.
    sequence = (record.get("dynamodb") or {}).get("SequenceNumber")
    if sequence:
        fields = {**fields, "seq": str(sequence)}
    return {"id": event_id(event_type, keys, fields), "type": event_type,
            "timestamp": _timestamp(record, image), "data": data}


def user_of(record: dict) -> str | None:
    """The owner of the record's item, for items that are a resource (a membership's: the project's home)."""
    change = record.get("dynamodb") or {}
    kind = _kind(change.get("Keys") or {})
    if kind is not None and kind[0] == "member":
        home = _image_value(change.get("NewImage") or change.get("OldImage"), "home")
        return home if isinstance(home, str) else None
    return kind[1] if kind else None


def audience_of(record: dict) -> tuple[str | None, str | None]:
    """(project id, a user the event concerns besides the project's people) of a record's item, for
    the fan-out to a shared project's members (issue 30): avatars and generations name their project;
    a project's own key does; a membership names its project and its member (who hears of their own
    removal, though no longer a member)."""
    change = record.get("dynamodb") or {}
    kind = _kind(change.get("Keys") or {})
    if kind is None:
        return None, None
    if kind[0] == "member":
        return kind[2], kind[1]
    if kind[0] == "project":
        return kind[2], None
    if kind[0] in ("avatar", "generation"):
        project = _image_value(change.get("NewImage") or change.get("OldImage"), "projectId")
        return (project if isinstance(project, str) else None), None
    return None, None


def from_stream_record(record: dict) -> list[dict]:
    """The events one DynamoDB stream record (Lambda's shape: eventName, dynamodb.Keys/OldImage/NewImage)
    stands for: usually none, at most two (an avatar that becomes ready with a new name at once)."""
    change = record.get("dynamodb") or {}
    keys = change.get("Keys") or {}
    kind = _kind(keys)
    if kind is None:
        return []
    name = record.get("eventName")
    old, new = change.get("OldImage"), change.get("NewImage")
    if kind[0] == "avatar":
        return list(_avatar_events(record, name, keys, old, new))
    if kind[0] == "generation":
        return list(_generation_events(record, name, keys, old, new))
    if kind[0] == "share":
        return list(_share_events(record, name, keys, old, new))
    if kind[0] == "member":
        return list(_member_events(record, name, keys, old, new))
    return list(_project_events(record, name, keys, old, new))


def _avatar_events(record: dict, name: str, keys: dict, old: dict | None, new: dict | None) -> Iterable[dict]:
    if name == "REMOVE":
        if old and _image_value(old, "status") in ANNOUNCED_AVATAR:
            # The deletion's own time (the record's), not the avatar's last update.
            yield _event(AVATAR_DELETED, record, keys, {"createdAt": _image_value(old, "createdAt")}, None,
                         avatar_data(old))
        return
    status, before = _image_value(new, "status") if new else None, _image_value(old, "status") if old else None
    if status == "deleting" and before in ANNOUNCED_AVATAR:
        # A delete retires the avatar first (gone for the user from then on) and removes the item
        # after its history and files: that first step is the deletion an app hears of.
        yield _event(AVATAR_DELETED, record, keys, {"status": status}, new, avatar_data(old))
        return
    if not new:
        return
    if status != before and status in ("ready", "rejected"):
        event_type = AVATAR_READY if status == "ready" else AVATAR_REJECTED
        fields = {"status": status, "createdAt": _image_value(new, "createdAt")}
        yield _event(event_type, record, keys, fields, new, avatar_data(new))
        return
    if status == "ready" and before == "ready":
        now_tracked = _avatar_tracked(new)
        if now_tracked != _avatar_tracked(old):
            fields = {"tracked": now_tracked, "updatedAt": _image_value(new, "updatedAt")}
            yield _event(AVATAR_UPDATED, record, keys, fields, new, avatar_data(new))


def _generation_events(record: dict, name: str, keys: dict, old: dict | None,
                       new: dict | None) -> Iterable[dict]:
    if name == "REMOVE" or not new:
        return
    status, before = _image_value(new, "status"), _image_value(old, "status") if old else None
    if status != before and status in GENERATION_FINAL:
        yield _event(GENERATION_FINAL[status], record, keys, {"status": status}, new, generation_data(new))


def _project_events(record: dict, name: str, keys: dict, old: dict | None, new: dict | None) -> Iterable[dict]:
    if name == "REMOVE" and old:
        yield _event(PROJECT_DELETED, record, keys, {"createdAt": _image_value(old, "createdAt")}, None,
                     project_data(old))


def _member_events(record: dict, name: str, keys: dict, old: dict | None, new: dict | None) -> Iterable[dict]:
    # A role change is neither: members see it in GET /projects/{id}/members.
    if name == "INSERT" and new:
        yield _event(MEMBER_ADDED, record, keys, {"addedAt": _image_value(new, "addedAt")}, new, member_data(new))
    elif name == "REMOVE" and old:
        yield _event(MEMBER_REMOVED, record, keys, {"addedAt": _image_value(old, "addedAt")}, None, member_data(old))


def _share_events(record: dict, name: str, keys: dict, old: dict | None, new: dict | None) -> Iterable[dict]:
    if name == "INSERT" and new:
        yield _event(AVATAR_SHARED, record, keys, {"createdAt": _image_value(new, "createdAt")}, new, share_data(new))
        return
    if name == "MODIFY" and new and _image_value(new, "revokedAt") and not (old and _image_value(old, "revokedAt")):
        yield _event(AVATAR_SHARE_REVOKED, record, keys, {"revokedAt": _image_value(new, "revokedAt")}, new,
                     share_data(new))
        return
    if name == "REMOVE" and old and not _image_value(old, "revokedAt"):
        # Removed with its avatar while it still worked; an expired link leaving by TTL says nothing.
        when = _timestamp(record, None)
        expires = _image_value(old, "expiresAt")
        if isinstance(expires, str) and expires > when:
            data = {**share_data(old), "revokedAt": when, "revokedReason": "avatar_deleted"}
            yield _event(AVATAR_SHARE_REVOKED, record, keys, {"revokedAt": None}, None, data)


def test_event(webhook_id: str, user_id: str, nonce: str, timestamp: str) -> dict:
    """The `webhook.test` event POST /webhooks/{id}/test sends: its id is fresh per request."""
    return {"id": "evt_" + nonce, "type": WEBHOOK_TEST, "timestamp": timestamp,
            "data": {"webhookId": webhook_id, "userId": user_id, "message": "This is a test event."}}
