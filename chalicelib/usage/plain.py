"""usage-event.v1 read without pydantic, for the usage consumer's cold start: importing pydantic and
building chalicelib.schemas costs 150–270 ms on a fresh process (measured in the venv), more than
the rest of the consumer's work.

`read_plain` takes a message body that is plainly a valid event and returns its values, exactly as
chalicelib.schemas.UsageEvent would; for anything it is not certain about (invalid, unusual JSON,
non-ASCII where the two regex engines could differ) it returns None and the pydantic model decides
and words the rejection. The rules here copy the model's; tests/unit/test_usage_plain_matches_schema.py
checks on generated bodies that the two agree. Also home of the time canonicalisation both use
(pydantic-free, so this module stays light).
"""
from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace
from typing import Any

from chalicelib.querystrings import encodable

USAGE_METADATA_MAX_BYTES = 2048
USAGE_MAX_CLOCK_SKEW_SECONDS = 300
METADATA_MAX_KEYS = 20
# A use older than this is not one of ours (the service did not exist), and no datetime edge case.
USAGE_EARLIEST_YEAR = 2000
USAGE_EARLIEST = "2000-01-01T00:00:00Z"
# DynamoDB stores no number of smaller magnitude than 1E-130; floats below this are refused as input.
METADATA_MIN_MAGNITUDE = 1e-128


def canonical_time(value: str) -> str:
    """Any accepted ISO-8601 instant → the service's one format (UTC, milliseconds, Z), so that
    history keys sort chronologically as strings. Rejects impossible dates and far-future times."""
    from datetime import datetime, timedelta, timezone

    head, _, tail = value.partition(".")
    if tail:  # fromisoformat takes at most 6 fractional digits
        digits = len(tail) - len(tail.lstrip("0123456789"))
        tail = tail[:min(digits, 6)] + tail[digits:]
        value = f"{head}.{tail}"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("not a valid date-time") from exc
    try:  # near year 1 or 9999 an offset moves the instant out of datetime's range
        if moment > datetime.now(timezone.utc) + timedelta(seconds=USAGE_MAX_CLOCK_SKEW_SECONDS):
            raise ValueError(f"is more than {USAGE_MAX_CLOCK_SKEW_SECONDS} s in the future")
        moment = moment.astimezone(timezone.utc)
    except OverflowError as exc:
        raise ValueError(f"is before {USAGE_EARLIEST}") from exc
    if moment.year < USAGE_EARLIEST_YEAR:
        raise ValueError(f"is before {USAGE_EARLIEST}")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def storable_number(value: float) -> bool:
    """DynamoDB numbers: magnitude 0 or between 1E-130 and 1E126; finite."""
    return math.isfinite(value) and (value == 0 or abs(value) >= METADATA_MIN_MAGNITUDE)


# The schema's patterns; all ASCII classes, so Python's re and pydantic's engine agree on them.
_PATTERNS = {
    "eventId": re.compile(r"[A-Za-z0-9._:-]{1,128}"),
    "userId": re.compile(r"[A-Za-z0-9_.@:-]{1,128}"),
    "avatarId": re.compile(r"[A-Za-z0-9_-]{1,64}"),
    "appId": re.compile(r"(?=.{1,64}$)[a-z0-9]+(-[a-z0-9]+)*"),
    "action": re.compile(r"[A-Za-z0-9._:/-]{1,64}"),
    "referenceType": re.compile(r"[A-Za-z0-9._:/-]{1,64}"),
    "occurredAt": re.compile(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"),
}
_METADATA_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# "Not blank" (`\S`): an ASCII visible character settles it for both engines; otherwise let pydantic judge.
_ASCII_VISIBLE = re.compile(r"[!-~]")
_TEXT_MAX = {"appName": 100, "referenceId": 128}
REQUIRED = ("eventId", "userId", "avatarId", "appId", "appName", "action", "occurredAt")
OPTIONAL = ("referenceId", "referenceType", "metadata")


class _Unsure(Exception):
    pass


def _no_constants(name: str) -> Any:
    raise _Unsure(name)  # NaN/Infinity: not JSON to pydantic


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Unsure("duplicate key")
    return result


def _text_ok(field: str, value: Any) -> bool:
    if type(value) is not str:
        return False
    pattern = _PATTERNS.get(field)
    if pattern is not None:
        return pattern.fullmatch(value) is not None
    return (1 <= len(value) <= _TEXT_MAX[field] and _ASCII_VISIBLE.search(value) is not None
            and encodable(value))


def _metadata_value_ok(value: Any) -> bool:
    kind = type(value)
    if value is None or kind is bool:
        return True
    if kind is str:
        return len(value) <= 500 and encodable(value)
    if kind is int:
        return -10**15 <= value <= 10**15
    if kind is float:
        return storable_number(value) and -1e15 <= value <= 1e15
    return False


def _metadata_ok(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is not dict or len(value) > METADATA_MAX_KEYS:
        return False
    if not all(_METADATA_KEY.fullmatch(k) and _metadata_value_ok(v) for k, v in value.items()):
        return False
    return len(json.dumps(value, separators=(",", ":")).encode()) <= USAGE_METADATA_MAX_BYTES


def read_plain(body: str | bytes) -> SimpleNamespace | None:
    """The event's values (occurredAt canonical) if the body is plainly a valid usage-event.v1, else None."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        data = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except (_Unsure, ValueError, TypeError, RecursionError):
        return None
    if type(data) is not dict or not set(REQUIRED) <= data.keys() <= set(REQUIRED + OPTIONAL):
        return None
    for field in REQUIRED + ("referenceId", "referenceType"):
        value = data.get(field)
        if field in REQUIRED or value is not None:
            if not _text_ok(field, value):
                return None
    if not _metadata_ok(data.get("metadata")):
        return None
    try:
        occurred_at = canonical_time(data["occurredAt"])
    except ValueError:
        return None
    values = {field: data.get(field) for field in REQUIRED + OPTIONAL}
    values["occurredAt"] = occurred_at
    return SimpleNamespace(**values)
