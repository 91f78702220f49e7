"""Compare 2–4 avatars of a project side by side (issue 29, item 4): their attributes, persona and
pictures, and their use per app per day over a window of days ending today (the clock's UTC day).

Reads are bounded whatever the history: ONE BatchGetItem (the project and the avatars) and ONE Query
per avatar on its daily counters (`U#{uid}#A#{aid}#D`, written by the usage recording transaction,
chalicelib/usage/service.py) — at most 5 calls. The days come from the events' `occurredAt` (UTC), so
an event that arrives late still counts on the day it happened.

Every function takes the id of the user whose data it reads first: the owner's (a member of a shared
project will act on the project's home user, issue 30).
"""
from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from chalicelib import clock, ids
from chalicelib.avatars import service as avatars
from chalicelib.errors import NotFoundError, ValidationError
from chalicelib.usage import store

MIN_AVATARS, MAX_AVATARS = 2, 4
MIN_DAYS, MAX_DAYS, DEFAULT_DAYS = 1, 90, 30
# Apps of one avatar read per window: 90 days × 100 apps of small items stays well under one Query's
# 1 MB, so the window is one call; past that the answer says `truncated`.
APPS_PER_DAY_MAX = 100


def parse_avatar_ids(raw: str | None) -> list[str]:
    """`a,b,c` → 2–4 distinct, well-formed avatar ids in the order given, else ValidationError whose
    details say what is wrong (count, duplicates, malformed ids)."""
    if raw is None or not raw.strip():
        raise ValidationError("Name 2 to 4 avatars to compare: ?avatars=ava_…,ava_…",
                              details=[{"field": "avatars", "type": "missing", "message": "required"}])
    names = [part.strip() for part in raw.split(",")]
    if len(names) > MAX_AVATARS or len(names) < MIN_AVATARS:
        raise ValidationError(f"Compare {MIN_AVATARS} to {MAX_AVATARS} avatars (got {len(names)})",
                              details=[{"field": "avatars", "type": "count", "message":
                                        f"between {MIN_AVATARS} and {MAX_AVATARS} ids", "count": len(names)}])
    malformed = [i for i, n in enumerate(names) if not ids.is_valid_id(n, "ava")]
    if malformed:  # said by position: a hostile value is not echoed back (errors.validation_details neither)
        raise ValidationError("Not an avatar id",
                              details=[{"field": f"avatars.{i}", "type": "malformed", "message": "not an avatar id"}
                                       for i in malformed])
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValidationError("Each avatar may be named once",
                              details=[{"field": "avatars", "type": "duplicate", "message": "named more than once",
                                        "value": n} for n in repeated])
    return names


def parse_days(raw: str | None) -> int:
    """The window in days: 1–90, 30 when absent, else ValidationError."""
    if raw is None or raw == "":
        return DEFAULT_DAYS
    if not (raw.isascii() and raw.isdigit()) or not MIN_DAYS <= int(raw) <= MAX_DAYS:
        raise ValidationError(f"days must be a whole number from {MIN_DAYS} to {MAX_DAYS}",
                              details=[{"field": "days", "type": "range", "message": f"from {MIN_DAYS} to {MAX_DAYS}"}])
    return int(raw)


def window(days: int) -> list[str]:
    """The window's UTC days (`yyyy-mm-dd`), oldest first, ending today (the clock's)."""
    today = clock.now().astimezone(timezone.utc)
    return [(today - timedelta(days=back)).strftime("%Y-%m-%d") for back in range(days - 1, -1, -1)]


def compare(user_id: str, project_id: str, avatar_ids: list[str], *, days: int, storage: Any,
            url_expiry: int) -> dict:
    """The avatars (in the order asked) with their use per app: totals and a per-day series with zeros
    filled. NotFoundError when the project is not the user's, or an avatar is not one of its avatars
    (another user's, another project's, deleted): the same 404 for each."""
    project, found = store.compared_items(user_id, project_id, avatar_ids)
    if project is None:
        raise NotFoundError("Project not found", details={"projectId": project_id})
    missing = [a for a in avatar_ids if a not in found or found[a].project_id != project_id
               or found[a].status == "deleting"]
    if missing:
        raise NotFoundError("Avatar not found", details={"avatarIds": missing})
    dates = window(days)
    position = {day: i for i, day in enumerate(dates)}
    apps: dict[str, dict] = {}
    compared = []
    for aid in avatar_ids:
        counters, more = store.avatar_days(user_id, aid, first=dates[0], last=dates[-1],
                                           limit=days * APPS_PER_DAY_MAX)
        by_app: dict[str, dict] = {}
        daily = [0] * days
        for item in counters:
            at = position.get(item.day)
            if at is None:  # not possible through the SK range; a hand-written item must not break the page
                continue
            uses = int(item.uses or 0)
            row = by_app.setdefault(item.app_id, {"appId": item.app_id, "appName": item.app_name or item.app_id,
                                                  "total": 0, "daily": [0] * days})
            row["daily"][at] += uses
            row["total"] += uses
            row["appName"] = item.app_name or row["appName"]  # the latest day's name wins: apps get renamed
            daily[at] += uses
            known = apps.setdefault(item.app_id, {"appId": item.app_id, "appName": row["appName"], "total": 0})
            known["total"] += uses
            known["appName"] = row["appName"]
        compared.append({
            "avatar": avatars.to_json(found[aid], storage, url_expiry),
            "total": sum(daily),
            "daily": daily,
            "byApp": sorted(by_app.values(), key=lambda r: (-r["total"], r["appId"])),
            "truncated": more,
        })
    return {
        "projectId": project_id,
        "days": days,
        "from": dates[0],
        "to": dates[-1],
        "dates": dates,
        "apps": sorted(apps.values(), key=lambda r: (-r["total"], r["appId"])),
        "avatars": compared,
    }

