"""Time-sortable identifiers (ULID layout: 48-bit ms time + 80 random bits, Crockford base32).

Sorting ids sorts by creation time, so "newest first" is a key-order Query.
"""
from __future__ import annotations

import hashlib
import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid().lower()}"


def is_valid_id(value: str, prefix: str) -> bool:
    if not isinstance(value, str) or not value.startswith(prefix + "_"):
        return False
    body = value[len(prefix) + 1:]
    return len(body) == 26 and all(c in _ALPHABET for c in body.upper())


# A generation job makes up to this many images; each gets an avatar id derived from the job's id, so
# every delivery of the job names the same avatars (chalicelib/generation/spec.py uses both).
MAX_IMAGES = 4
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def avatar_id_for(generation_id: str, index: int = 0) -> str:
    """The avatar id of the job's image `index`, derived so every delivery of the job names the same
    avatars. Image 0 keeps the generation's own id body (as before issue 19); the others keep its time
    part (so they sort with it) and take the rest from a hash of (generation id, index)."""
    body = generation_id.split("_", 1)[1]
    if index == 0:
        return "ava_" + body
    digest = int.from_bytes(hashlib.sha256(f"{generation_id}#{index}".encode()).digest()[:10], "big")
    tail = "".join(_CROCKFORD[(digest >> (5 * i)) & 31] for i in range(16))
    return "ava_" + body[:10] + tail
