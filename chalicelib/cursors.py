"""Opaque, tamper-proof pagination cursors bound to one user and one listing.

A raw LastEvaluatedKey would leak key structure and let a client page through
someone else's partition; the HMAC binds the cursor to (user, scope).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from chalicelib.errors import ValidationError


def _sign(secret: bytes, user_id: str, scope: str, payload: bytes) -> bytes:
    return hmac.new(secret, b"\x00".join([user_id.encode(), scope.encode(), payload]), hashlib.sha256).digest()[:16]


def encode_cursor(last_key: dict | None, *, secret: bytes, user_id: str, scope: str) -> str | None:
    if not last_key:
        return None
    payload = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    token = _sign(secret, user_id, scope, payload) + payload
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, secret: bytes, user_id: str, scope: str) -> dict | None:
    if cursor in (None, ""):
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError) as exc:
        raise ValidationError("Invalid cursor", details={"field": "cursor"}) from exc
    sig, payload = raw[:16], raw[16:]
    if len(cursor) > 2048 or not hmac.compare_digest(sig, _sign(secret, user_id, scope, payload)):
        raise ValidationError("Invalid cursor", details={"field": "cursor"})
    return json.loads(payload)
