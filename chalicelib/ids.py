"""Time-sortable identifiers (ULID layout: 48-bit ms time + 80 random bits, Crockford base32).

Sorting ids sorts by creation time, so "newest first" is a key-order Query.
"""
from __future__ import annotations

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
