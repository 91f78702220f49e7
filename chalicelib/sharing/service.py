"""Share links: the rules. A link is `…/s/{token}`; the token is 32 random bytes (256 bits,
`secrets.token_urlsafe(32)`), shown once when the link is made. Only its SHA-256 is stored, as the key
of the item that leads to the share, so the table never holds a working link.

A view answers the avatar only while the share is neither revoked nor expired and the avatar exists
and is ready; 404 when no link has that token, 410 when the link did exist (revoked, expired, or its
avatar deleted). Images go out as presigned GETs of IMAGE_URL_SECONDS, signed at each view, so a
revocation is complete within that time.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock, ids
from chalicelib.errors import ConflictError, NotFoundError, QuotaExceededError, ServiceError, ValidationError
from chalicelib.sharing import store

# What a page may show beyond the avatar's name and image, in the order it shows them.
FIELDS = ("personaName", "personaAge", "personaPersonality", "personaBackground", "attributes", "prompt")
DEFAULT_FIELDS = ("attributes",)
DEFAULT_EXPIRES_IN = 30 * 86400
MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 365 * 86400
ACTIVE_LIMIT = 20  # links neither revoked nor expired, per avatar
IMAGE_URL_SECONDS = 300
# Views per client (source IP) per minute, unknown tokens included: guessing is throttled too.
VIEWS_PER_WINDOW = 30
VIEW_WINDOW_SECONDS = 60
# Ended links (revoked, expired) are listed this long, then leave the table by TTL.
KEEP_ENDED_SECONDS = 30 * 86400
TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # what token_urlsafe(32) gives


class ShareGoneError(ServiceError):
    status = 410
    code = "gone"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def state(share: Any, now: datetime) -> str:
    if share.revoked_at:
        return "revoked"
    return "expired" if share.expires_at <= clock.iso(now) else "active"


def to_json(share: Any, now: datetime | None = None) -> dict:
    """A link as its owner sees it: never the token, only its last 4 characters."""
    return {
        "id": share.id,
        "avatarId": share.avatar_id,
        "projectId": share.project_id,
        "label": share.label,
        "fields": list(share.fields or []),
        "tokenHint": share.token_hint,
        "status": state(share, now or clock.now()),
        "createdAt": share.created_at,
        "expiresAt": share.expires_at,
        "revokedAt": share.revoked_at,
    }


def _not_found(avatar_id: str) -> NotFoundError:
    return NotFoundError("Avatar not found", details={"avatarId": avatar_id})


def normalize_fields(fields: list[str] | None) -> list[str]:
    """The chosen fields in FIELDS order, each once ("name" is always shown and need not be listed)."""
    chosen = set(DEFAULT_FIELDS if fields is None else fields)
    return [f for f in FIELDS if f in chosen]


def create_share(connection: Any, user_id: str, avatar_id: str, *, expires_in: int | None = None,
                 label: str | None = None, fields: list[str] | None = None) -> tuple[Any, str]:
    """A new link to one of the user's ready avatars → (share, token). The token is not kept."""
    expires_in = DEFAULT_EXPIRES_IN if expires_in is None else int(expires_in)
    if not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN:  # the schema says so too; the rule lives here
        raise ValidationError("expiresIn is out of range", details={"min": MIN_EXPIRES_IN, "max": MAX_EXPIRES_IN})
    avatar = store.get_avatar(user_id, avatar_id, consistent=True)
    if avatar is None or avatar.status == "deleting":
        raise _not_found(avatar_id)
    if avatar.status != "ready":
        raise ConflictError("Only a ready avatar can be shared", code="avatar_not_ready",
                            details={"status": avatar.status})
    now = clock.now()
    if store.count_active(user_id, avatar_id, clock.iso(now)) >= ACTIVE_LIMIT:
        raise ConflictError(f"An avatar has at most {ACTIVE_LIMIT} active links; revoke one first",
                            code="share_limit", details={"limit": ACTIVE_LIMIT})
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires = now + timedelta(seconds=expires_in)
    share = store.new_share(user_id=user_id, share_id=ids.new_id("shr"), avatar_id=avatar_id,
                            project_id=avatar.project_id, label=label or None, fields=normalize_fields(fields),
                            token_hash=hash_token(token), token_hint=token[-4:], now_iso=clock.iso(now),
                            expires_iso=clock.iso(expires), ttl=clock.epoch(expires) + KEEP_ENDED_SECONDS)
    from chalicelib.teams import store as team_store

    def home_item(tx: Any) -> None:
        # Where a member of the avatar's project finds the link to revoke it (issue 30).
        team_store.add_item_home(tx, "share", share.id, user_id, avatar.project_id, ttl=share.ttl,
                                 name="share home")
    try:
        store.put_share(connection, share, also=home_item)
    except store.AvatarNotReady:
        raise _not_found(avatar_id) from None  # being deleted meanwhile: gone for the user
    return share, token


def owned_avatar(user_id: str, avatar_id: str) -> Any:
    """The user's avatar (any status but deleting), or 404."""
    avatar = store.get_avatar(user_id, avatar_id)
    if avatar is None or avatar.status == "deleting":
        raise _not_found(avatar_id)
    return avatar


def list_shares(user_id: str, avatar_id: str, *, limit: int, start_key: dict | None) -> tuple[list, dict | None]:
    owned_avatar(user_id, avatar_id)
    return store.list_shares(user_id, avatar_id, limit=limit, start_key=start_key)


def revoke_share(user_id: str, share_id: str) -> Any:
    """Revoke one of the user's links; revoking a revoked link changes nothing (idempotent)."""
    share = store.get_share(user_id, share_id, consistent=True)
    if share is None:
        raise NotFoundError("Share not found", details={"shareId": share_id})
    if share.revoked_at:
        return share
    now = clock.now()
    ttl = clock.epoch(now) + KEEP_ENDED_SECONDS
    store.revoke(share, now_iso=clock.iso(now), reason="owner", ttl=min(ttl, int(share.ttl or ttl)))
    return store.get_share(user_id, share_id, consistent=True) or share


def remove_for_avatar(user_id: str, avatar_id: str) -> int:
    """An avatar is being deleted: its links go with it (their tokens then answer 410)."""
    return store.delete_all_of_avatar(user_id, avatar_id)


# ---- the public view ----------------------------------------------------------------------------

def admit_view(client: str, now: datetime | None = None) -> None:
    """At most VIEWS_PER_WINDOW views per client per window, else 429 with Retry-After."""
    at = clock.epoch(now or clock.now())
    start = at - at % VIEW_WINDOW_SECONDS
    if not store.admit_view(client[:64] or "unknown", start, VIEWS_PER_WINDOW, VIEW_WINDOW_SECONDS):
        raise QuotaExceededError("Too many views; try again shortly", retry_after=max(1, start + VIEW_WINDOW_SECONDS - at),
                                 details={"limit": VIEWS_PER_WINDOW, "windowSeconds": VIEW_WINDOW_SECONDS})


def resolve(token: str, now: datetime | None = None) -> tuple[Any, Any]:
    """token → (share, avatar) a view may show; NotFoundError (no such link) or ShareGoneError."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise NotFoundError("Link not found")
    pointer = store.get_token(hash_token(token))
    if pointer is None:
        raise NotFoundError("Link not found")
    gone = ShareGoneError("This link was revoked or has expired")
    share = store.get_share(pointer.user_id, pointer.share_id, consistent=True)
    if share is None or state(share, now or clock.now()) != "active":
        raise gone
    avatar = store.get_avatar(share.user_id, share.avatar_id, consistent=True)
    if avatar is None or avatar.status != "ready":
        raise gone
    return share, avatar


_ATTRIBUTES = (("gender", "gender"), ("ageRange", "age_range"), ("ethnicity", "ethnicity"),
               ("bodyType", "body_type"), ("hairStyle", "hair_style"), ("hairColor", "hair_color"),
               ("eyeColor", "eye_color"), ("skinTone", "skin_tone"), ("style", "style"))


def public_view(share: Any, avatar: Any) -> dict:
    """Exactly what the page shows: the name, the image's key and the chosen fields — no id, no usage."""
    chosen = set(share.fields or [])
    persona, attrs = avatar.persona, avatar.attributes
    shown: list[tuple[str, str]] = []
    if "personaName" in chosen and persona and persona.name:
        shown.append(("personaName", persona.name))
    if "personaAge" in chosen and persona and persona.age is not None:
        shown.append(("personaAge", str(int(persona.age))))
    if "personaPersonality" in chosen and persona and persona.personality:
        shown.append(("personaPersonality", ", ".join(persona.personality)))
    if "personaBackground" in chosen and persona and persona.background:
        shown.append(("personaBackground", persona.background))
    if "attributes" in chosen and attrs:
        shown.extend((name, str(getattr(attrs, attr))) for name, attr in _ATTRIBUTES if getattr(attrs, attr))
    if "prompt" in chosen and avatar.prompt:
        shown.append(("prompt", avatar.prompt))
    return {"name": avatar.name, "imageKey": avatar.display_key or avatar.image_key, "fields": shown}
