"""Avatar usage reported by other apps: record each event exactly once, read an avatar's history,
and a user's stats.

Delivery is at least once (SQS redelivers, apps re-send, HTTP clients retry). Effects are exactly
once because all of an event's effects ride in ONE transaction together with a conditional put of
the event's marker (`U#{uid}#EVT#{eventId}`): a replay fails that condition and changes nothing.
The avatar's key holds the user id, so the avatar update's "exists" condition is also the
ownership check: an event naming another user's avatar cancels the whole transaction.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import clock

from chalicelib.avatars import service as avatars
from chalicelib.avatars import store as avatar_store
from chalicelib.aws.db import Transaction, TransactionCancelled
from chalicelib.errors import ConflictError, DependencyError, NotFoundError, ValidationError, validation_details
from chalicelib.usage import store
from chalicelib.usage.store import record_sk  # noqa: F401 — the history key's shape, named here too
from chalicelib.users import store as user_store

RECORDED = "recorded"
DUPLICATE = "duplicate"
SUMMARY_LIMIT = 100  # apps per avatar shown with its history; the number of apps is small in practice
USAGE_BY_APP_LIMIT = 50
RECENT_DAYS = 7

_MAX_ATTEMPTS = 5
_MAX_CONFLICT_RETRIES = 4
_CONFLICT_BACKOFF_SECONDS = 0.01
# Names of the transaction's operations (db.Transaction reads cancellation reasons by them).
_MARKER, _RECORD, _AVATAR, _SUMMARY, _APP_TOTAL, _STATS = "marker", "record", "avatar", "summary", "app_total", "stats"
_DAY = "day"


@dataclass(frozen=True)
class Outcome:
    status: str  # recorded | duplicate
    event: UsageEvent
    recorded_at: str | None

    def to_json(self) -> dict:
        return {"status": self.status, "eventId": self.event.eventId, "avatarId": self.event.avatarId,
                "occurredAt": self.event.occurredAt, "recordedAt": self.recorded_at}

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import AppUsageSummaryModel, UsageRecordModel
    from chalicelib.schemas import UsageEvent


# ---- validation ----------------------------------------------------------------------------------

def parse_event(body: str | bytes) -> "UsageEvent":
    """A raw message body → a valid usage-event.v1, or ValidationError (`bad_json` / `invalid_event`)."""
    from chalicelib.usage.plain import read_plain

    plain = read_plain(body)  # the consumer's cold start skips pydantic for plainly valid events
    if plain is not None:
        return plain
    from pydantic import ValidationError as PydanticValidationError

    from chalicelib.schemas import UsageEvent

    try:
        return UsageEvent.model_validate_json(body)
    except PydanticValidationError as exc:
        details = validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            raise ValidationError("The event is not valid JSON", code="bad_json") from exc
        raise ValidationError("The event does not match usage-event.v1", code="invalid_event",
                              details=details) from exc


def build_event(fields: dict) -> "UsageEvent":
    """An event assembled by the service (HTTP: user from the token, avatar from the path)."""
    from pydantic import ValidationError as PydanticValidationError

    from chalicelib.schemas import UsageEvent

    try:
        return UsageEvent.model_validate(fields)
    except PydanticValidationError as exc:
        if any(d["field"] == "avatarId" for d in validation_details(exc)):
            # A path id that could never exist is simply not found, like another user's id.
            raise NotFoundError("Avatar not found", details={"avatarId": fields.get("avatarId")}) from exc
        raise ValidationError("The usage event is invalid", details=validation_details(exc)) from exc


# ---- recording -----------------------------------------------------------------------------------

# Events of one user recorded in one transaction: n markers + n history rows + ≤ n avatars + ≤ n
# avatar summaries + ≤ n avatar days (issue 29) + ≤ n app totals + STATS = at most 6n + 1 items,
# within DynamoDB's 100 for n ≤ 16.
GROUP_MAX = 16


def _latest(events: list["UsageEvent"]) -> "UsageEvent":
    """The event whose name and time win (ties broken by eventId, so every retry picks the same one)."""
    return max(events, key=lambda e: (e.occurredAt, e.eventId))


def _by(events: list["UsageEvent"], field: str) -> dict[str, list["UsageEvent"]]:
    out: dict[str, list[UsageEvent]] = {}
    for e in events:
        out.setdefault(getattr(e, field), []).append(e)
    return out


def _by_day(events: list["UsageEvent"]) -> dict[str, list["UsageEvent"]]:
    out: dict[str, list[UsageEvent]] = {}
    for e in events:
        out.setdefault(occurred_day(e), []).append(e)
    return out


def _avatar_op(aid: str) -> str:
    return f"{_AVATAR}:{aid}"


def occurred_day(event: "UsageEvent") -> str:
    """The UTC day an event happened (`occurredAt` is canonical UTC): the day its use is counted on,
    whenever it arrives."""
    return event.occurredAt[:10]


def _day_ttl(day: str) -> int:
    from datetime import datetime, timezone

    return store.day_ttl(clock.epoch(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc)))


def _write(connection: Any, events: list["UsageEvent"], recorded_at: str, guarded: set[str], marker_ttl: int) -> None:
    """One transaction with every effect of these events — all of ONE user, on one or more avatars.

    Each event keeps its own conditional marker and history row (exactly once per event); the
    counters are written once for all of them (`ADD n`): each avatar's `usageCount` and per-app
    summary, the user's per-app totals and `STATS`. That is what makes a batch cheap: 10 events of
    one avatar are 20 + 5 item writes instead of 60 (+ one per app and day of the avatar: its daily
    counters), and 3 avatars still one transaction.

    DynamoDB has no max(): `lastUsedAt` is SET only under a condition that it is not newer
    (`guarded`, by operation name). When the stored value is newer than the events' latest, that
    condition fails; the caller drops the guard for that item and retries without touching its
    `lastUsedAt`. In-order batches (the usual case) cost one transaction; otherwise two.
    """
    uid = events[0].userId
    with Transaction(connection) as tx:
        for i, event in enumerate(events):
            store.mark_event(tx, f"{_MARKER}:{i}", event, recorded_at=recorded_at, ttl=marker_ttl)
            store.add_history(tx, f"{_RECORD}:{i}", event, recorded_at=recorded_at)
        for aid, avatar_events in _by(events, "avatarId").items():
            latest = _latest(avatar_events)
            avatar_store.count_uses(tx, _avatar_op(aid), uid, aid, uses=len(avatar_events),
                                    last_used_at=latest.occurredAt if _avatar_op(aid) in guarded else None)
            for app, app_events in _by(avatar_events, "appId").items():
                name = f"{_SUMMARY}:{aid}:{app}"
                newest = _latest(app_events)  # the latest event's name wins: apps get renamed
                store.count_avatar_app(tx, name, uid, aid, app_id=app, uses=len(app_events), app_name=newest.appName,
                                       last_used_at=newest.occurredAt, guarded=name in guarded)
                # Compare's per-day series (issue 29): in this transaction, so the markers make it exactly once too.
                for day, day_events in sorted(_by_day(app_events).items()):
                    store.count_avatar_day(tx, f"{_DAY}:{aid}:{app}:{day}", uid, aid, day=day, app_id=app,
                                           uses=len(day_events), app_name=_latest(day_events).appName,
                                           ttl=_day_ttl(day))
        for app, app_events in _by(events, "appId").items():
            name = f"{_APP_TOTAL}:{app}"
            newest = _latest(app_events)
            store.count_user_app(tx, name, uid, app_id=app, uses=len(app_events), app_name=newest.appName,
                                 last_used_at=newest.occurredAt, guarded=name in guarded)
        user_store.count_usage(tx, uid, len(events), name=_STATS)


def _require_usable_avatar(user_id: str, avatar_id: str) -> None:
    """Says why the avatar refused the event (a rare path, so one extra read is fine)."""
    avatar = avatars.get_avatar(user_id, avatar_id, consistent=True)
    if avatar.status != "ready":
        # Only ready avatars are counted in the user's totals; usage of others could not be undone
        # consistently when they are deleted.
        raise ConflictError("Avatar is not ready", code="avatar_not_ready",
                            details={"avatarId": avatar_id, "status": avatar.status})


# Bound on the container's memory of refused users (Dependencies.refused_seconds): a client ignoring
# 429s costs no DynamoDB write after its first refusal in a second on this container.
_REFUSED_MAX = 10_000


def _refuse(per_second: int) -> "Exception":
    from chalicelib.errors import QuotaExceededError

    return QuotaExceededError(f"At most {per_second} usage reports per second; slow down",
                              retry_after=1, details={"limit": per_second, "kind": "rate"})


def admit(user_id: str, per_second: int, kind: str = "USAGE", refused: dict | None = None) -> None:
    """The HTTP path's rate limit: at most `per_second` reports per user in each clock second, else a
    429 saying when to come back — never a throttled retry storm on the user's hot partition.

    The window is an item of its own partition (`rate_window_pk`), never `U#{uid}`: a refused
    conditional write still costs a write unit, and it must not be charged where the user's counters
    live. A window so hammered that DynamoDB throttles it is also a 429 (it is the client's flood)."""
    refused = {} if refused is None else refused  # the container's memory (Dependencies.refused_seconds)
    second = clock.epoch(clock.now())
    if refused.get((kind, user_id)) == second:
        raise _refuse(per_second)
    if user_store.count_request(kind, user_id, second, limit=per_second, ttl=second + 120) != "counted":
        if len(refused) >= _REFUSED_MAX:
            refused.clear()
        refused[(kind, user_id)] = second
        raise _refuse(per_second)


def as_member(event: "UsageEvent") -> "UsageEvent | None":
    """A use reported by a member of a shared project for one of its avatars (issue 30), as the event of
    the avatar's home user, where its history and counters live; None when the reporter is no member
    (the event's refusal stands). Two reads (the avatar's HOME, the consistent membership)."""
    from chalicelib.teams import access

    found = access.resolve("avatar", event.avatarId, event.userId, "viewer")
    if found is None:
        return None
    if hasattr(event, "model_copy"):
        return event.model_copy(update={"userId": found.home})
    from types import SimpleNamespace

    return SimpleNamespace(**{**vars(event), "userId": found.home})


def record_usage(connection: Any, event: UsageEvent, *, dedupe_days: int = 30) -> Outcome:
    """Apply the event's effects once. A replay returns `duplicate` and changes nothing.

    Raises NotFoundError (not the user's avatar, or deleted), ConflictError (avatar not ready) —
    permanent, nothing written — or DependencyError / PynamoDB errors — transient, retry.
    """
    result = record_group(connection, [event], dedupe_days=dedupe_days)[0]
    if isinstance(result, Exception):
        raise result
    return result


def _marker_key(event: "UsageEvent") -> tuple[str, str, str]:
    return (event.userId, event.appId, event.eventId)


def group_by_user(events: list["UsageEvent"]) -> list[list[int]]:
    """Indexes of `events` grouped per user, in order of first appearance, each group cut to
    GROUP_MAX events (the transaction's item limit)."""
    groups: dict[str, list[list[int]]] = {}
    order: list[list[int]] = []
    for i, event in enumerate(events):
        chunks = groups.setdefault(event.userId, [])
        if not chunks or len(chunks[-1]) >= GROUP_MAX:
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(i)
    return order


def record_group(connection: Any, events: list["UsageEvent"], *,
                 dedupe_days: int = 30) -> list["Outcome | NotFoundError | ConflictError"]:
    """Apply the effects of several events of ONE user once each, the counters in one write.

    Returns one result per event, in order: an Outcome — `recorded`, or `duplicate` for an event
    recorded before (its marker exists: a redelivery, a re-send) or earlier in this same list — or
    the NotFoundError / ConflictError its avatar refused it with (not the user's, gone, not ready;
    nothing of it written: the other avatars' events are recorded without it). Raises
    DependencyError / PynamoDB errors when DynamoDB refuses (nothing written; retry the group).
    """
    if not events:
        return []
    if len({e.userId for e in events}) != 1 or len(events) > GROUP_MAX:
        raise ValueError("record_group takes up to GROUP_MAX events of one user")
    uid = events[0].userId
    now = clock.now()
    recorded_at = clock.iso(now)
    marker_ttl = clock.epoch(now) + dedupe_days * 86400
    results: list[Any] = [None] * len(events)
    pending: list[int] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, event in enumerate(events):
        if _marker_key(event) in seen:  # twice in one batch: one marker key, one use
            results[i] = Outcome(DUPLICATE, event, None)
        else:
            seen[_marker_key(event)] = i
            pending.append(i)
    guarded = ({_avatar_op(e.avatarId) for e in events} | {f"{_SUMMARY}:{e.avatarId}:{e.appId}" for e in events}
               | {f"{_APP_TOTAL}:{e.appId}" for e in events})
    conflicts = 0
    for _ in range(_MAX_ATTEMPTS + _MAX_CONFLICT_RETRIES):
        if not pending:
            break
        try:
            _write(connection, [events[i] for i in pending], recorded_at, guarded, marker_ttl)
        except TransactionCancelled as cancelled:
            failed = cancelled.conditions_failed
            if not failed:
                # Every event of a user updates the same STATS and APPUSE items, so concurrent
                # consumers collide (TransactionConflict). Waiting out the SQS visibility timeout for
                # that would add minutes of lag: retry here a few times with jitter first.
                if cancelled.conflict and conflicts < _MAX_CONFLICT_RETRIES:
                    conflicts += 1
                    time.sleep(random.uniform(0.5, 1.0) * _CONFLICT_BACKOFF_SECONDS * 2 ** conflicts)
                    continue
                raise DependencyError("Could not record the usage event; try again") from cancelled
            replayed = {i for n, i in enumerate(pending) if f"{_MARKER}:{n}" in failed}
            for aid in {events[i].avatarId for i in pending if _avatar_op(events[i].avatarId) in failed}:
                mine = [i for i in pending if events[i].avatarId == aid]
                if not (replayed & set(mine)) and _avatar_op(aid) in guarded:
                    continue  # maybe only its lastUsedAt guard: dropped below, then tried again
                try:
                    # The same eventId reused on someone else's avatar must still be a 404, not
                    # "duplicate"; and an avatar refusing without its guard is not ready or gone.
                    _require_usable_avatar(uid, aid)
                except (NotFoundError, ConflictError) as refused:
                    for i in mine:
                        results[i] = refused
                    replayed -= set(mine)
                    pending = [i for i in pending if i not in mine]
            for i in replayed:
                results[i] = Outcome(DUPLICATE, events[i], None)
            pending = [i for i in pending if i not in replayed]
            guarded -= failed
            continue
        for i in pending:
            results[i] = Outcome(RECORDED, events[i], recorded_at)
        pending = []
        break
    if pending:
        raise DependencyError("Could not record the usage event (kept conflicting); try again")
    for i, result in enumerate(results):
        if result is None:  # a repeat within the list of an event its avatar refused
            results[i] = results[seen[_marker_key(events[i])]]
    return results


# ---- reads ---------------------------------------------------------------------------------------

def record_json(record: UsageRecordModel) -> dict:
    metadata = record.metadata.as_dict() if record.metadata is not None else None
    return {
        "eventId": record.event_id,
        "appId": record.app_id,
        "appName": record.app_name,
        "action": record.action,
        "referenceId": record.reference_id,
        "referenceType": record.reference_type,
        "metadata": metadata,
        "occurredAt": record.occurred_at,
        "recordedAt": record.recorded_at,
    }


def app_usage_json(item: AppUsageSummaryModel) -> dict:
    return {"appId": item.app_id, "appName": item.app_name, "count": int(item.count or 0),
            "lastUsedAt": item.last_used_at}


def _by_count(items: list[AppUsageSummaryModel]) -> list[dict]:
    return sorted((app_usage_json(i) for i in items), key=lambda a: (-a["count"], a["appId"]))


def usage_history(user_id: str, avatar_id: str, *, limit: int,
                  start_key: dict | None) -> tuple[list[dict], dict | None, list[dict]]:
    """(records newest first, next key, summary by app): GetItem + one Query per history partition
    (the avatar's own, for rows from before issue 32, and its HISTORY_SHARDS shards) + one Query for
    the summary — 7 calls whatever the history size.

    The pages of the partitions are merged by SK (time, app, eventId: unique); the cursor is the last
    SK returned, and each partition is read below it. A cursor of the old form (a LastEvaluatedKey of
    the avatar's partition) carries the same SK, so it continues too."""
    avatars.get_avatar(user_id, avatar_id)  # another user's (or a deleted) avatar is 404, not an empty history
    before = (start_key or {}).get("before") or ((start_key or {}).get("SK") or {}).get("S")
    merged: list[UsageRecordModel] = []
    more = False
    for part in store.history_partitions(user_id, avatar_id):
        # one more than asked: the row at `before` itself (between is inclusive) is dropped below
        records, has_more = store.history_page(part, limit=limit + 1, before=before)
        merged += [r for r in records if r.sk != before]
        more = more or has_more
    merged.sort(key=lambda r: r.sk, reverse=True)
    page = merged[:limit]
    next_key = {"before": page[-1].sk} if page and (more or len(merged) > limit) else None
    summary = store.avatar_apps(user_id, avatar_id, limit=SUMMARY_LIMIT)
    return [record_json(r) for r in page], next_key, _by_count(summary)


def stats(user_id: str) -> dict:
    """Totals from counters kept by the writes: one BatchGetItem (STATS + the last 7 days) and one
    Query (usage by app), the same two calls for 1 avatar or 100,000."""
    days = clock.last_days(clock.now(), RECENT_DAYS)
    counters, found = user_store.read_counters(user_id, days)
    recent_uploads = sum(int(day.uploads or 0) for day in found.values())
    # The daily quota's own counter: images charged today, less what was given back.
    generations_today = int(found[days[0]].generations or 0) if days[0] in found else 0
    by_app = store.user_apps(user_id, limit=USAGE_BY_APP_LIMIT)
    total_avatars = int(counters.total_avatars or 0)
    total_usage = int(counters.total_usage or 0)
    return {
        "totalAvatars": total_avatars,
        "totalProjects": int(counters.total_projects or 0),
        "recentUploads": recent_uploads,
        "totalUsage": total_usage,
        "averageUsagePerAvatar": round(total_usage / total_avatars, 2) if total_avatars > 0 else 0,
        "bySourceType": {
            "uploaded": int(counters.avatars_uploaded or 0),
            "text_to_image": int(counters.avatars_generated or 0),
            "preset": int(counters.avatars_preset or 0),
        },
        "usageByApp": _by_count(by_app),
        "activeGenerations": int(counters.active_generations or 0),
        "generationsToday": generations_today,
    }
