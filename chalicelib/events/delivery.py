"""Getting events to webhooks: fan-out to one queue message per (webhook, event), then one signed
POST per message, retried through the queue (docs/events.md).

- Signatures follow Standard Webhooks: `webhook-id` (the event id, the same on every retry),
  `webhook-timestamp` (unix seconds) and `webhook-signature` = `v1,` + base64(HMAC-SHA256(key,
  "{id}.{timestamp}.{body}")), one per key, space-separated, while a rotated secret still signs.
- A 2xx answer delivers. Anything else, a refused address or no answer within the timeout is
  retried after WEBHOOK_RETRY_DELAYS: the next attempt is a new message carrying `notBefore`
  (SQS delays at most 15 min, so a longer wait is a chain of delayed hops), so a restart loses
  nothing. After the last attempt the message goes to the webhook DLQ.
- A user's deliveries in flight, across all their webhooks, are at most WEBHOOK_MAX_IN_FLIGHT (slot
  items), so no user holds up another's; see _acquire. An attempt is claimed, recorded, and only then
  is the next one queued: one retry chain per delivery (see the steps above deliver).
- An endpoint failing without a success for WEBHOOK_DISABLE_AFTER_SECONDS (5 days) is disabled,
  with the reason on the webhook.
- Every attempt is kept (TTL) for GET /webhooks/{id}/deliveries; a delivered marker per (webhook,
  event) makes a duplicate message (a replayed stream record, a redelivery) a no-op.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from datetime import datetime, timezone
from typing import Any, Callable

from typing import TYPE_CHECKING

from chalicelib import clock

from chalicelib.events import outbound, store
from chalicelib.errors import DependencyError
from chalicelib.events.mapping import WEBHOOK_TEST
from chalicelib.events.store import attempt_sk, user_slots_pk  # noqa: F401 — the keys, named here too
from chalicelib.observability import logger
from chalicelib.events.webhooks import secret_key, signing_secrets, user_webhooks

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import WebhookModel

SQS_MAX_DELAY = 900
USER_AGENT = "Lumiku-Webhooks/1.0 (+https://lumiku.com/docs/webhooks)"


# ---- signing -------------------------------------------------------------------------------------

def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()


def signed_headers(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets),
    }


def body_of(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


# ---- queue messages ------------------------------------------------------------------------------

def message(user_id: str, webhook_id: str, event: dict, attempt: int = 1, not_before: float | None = None) -> dict:
    out = {"v": 1, "userId": user_id, "webhookId": webhook_id, "attempt": attempt, "event": event}
    if not_before is not None:
        out["notBefore"] = round(not_before, 3)
    return out


def send(sqs: Any, queue_url: str | None, messages: list[dict], *, delay: int = 0) -> None:
    """Queue messages (10 per call); raises DependencyError when any is not accepted."""
    if not queue_url:
        raise DependencyError("WEBHOOK_QUEUE_URL is not configured")
    from botocore.exceptions import BotoCoreError, ClientError

    for start in range(0, len(messages), 10):
        chunk = messages[start:start + 10]
        entries = [{"Id": str(i), "MessageBody": json.dumps(m, separators=(",", ":")),
                    "DelaySeconds": max(0, min(SQS_MAX_DELAY, int(delay)))} for i, m in enumerate(chunk)]
        try:
            failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed") or []
        except (BotoCoreError, ClientError) as exc:
            raise DependencyError("Could not queue webhook deliveries") from exc
        if failed:
            raise DependencyError(f"{len(failed)} webhook deliveries were not queued",
                                  details={"failed": [f.get("Code") for f in failed]})


def fan_out(sqs: Any, queue_url: str | None, user_id: str, events: list[dict],
            webhooks: list["WebhookModel"] | None = None) -> int:
    """One message per (enabled webhook of the event's user, subscribed event): one Query (unless the
    caller has the user's webhooks already), one SendMessageBatch per 10 messages."""
    if not events:
        return 0
    hooks = [w for w in (user_webhooks(user_id) if webhooks is None else webhooks) if w.enabled]
    messages = [message(user_id, w.id, e) for e in events for w in hooks if e["type"] in (w.events or [])]
    if messages:
        send(sqs, queue_url, messages)
    return len(messages)


def send_test(sqs: Any, queue_url: str | None, webhook: "WebhookModel") -> dict:
    from chalicelib import ids
    from chalicelib.events.mapping import test_event

    event = test_event(webhook.id, webhook.user_id, ids.ulid().lower(), clock.now_iso())
    send(sqs, queue_url, [message(webhook.user_id, webhook.id, event)])
    return event


# ---- one delivery --------------------------------------------------------------------------------
#
# The steps of one message, each safe to run twice and concurrently:
#   1. read the webhook, its delivered marker for the event and this attempt's item (one BatchGetItem);
#      an attempt already recorded only finishes what its first run left undone (the next message or
#      the DLQ) and sends nothing: one retry chain per delivery, even when recording failed half-way;
#   2. take one of the webhook owner's in-flight slots (WEBHOOK_MAX_IN_FLIGHT across all their
#      webhooks), or come back later without spending an attempt: no user holds up another's;
#   3. claim the attempt (a conditional put; a copy of the message running at the same moment stops);
#   4. POST — every failure, ours included, is an outcome with a stable code, never an exception;
#   5. record the attempt (its item and the history row, plus the delivered marker on success) —
#      only then queue the next attempt (or dead-letter the last), then mark that done.

def _iso(epoch: float) -> str:
    return clock.iso(datetime.fromtimestamp(epoch, tz=timezone.utc))


# Lease of a slot or an attempt claim beyond the timeout: a worker killed mid-request frees them after
# this long. SQS redelivers after the queue's visibility timeout (180 s), later than this.
LEASE_MARGIN_SECONDS = 20


def deliver(sqs: Any, ddb: Any, settings: Any, raw: str, *,
            post: Callable[..., outbound.Response] = outbound.post,
            resolver: outbound.Resolver = outbound.system_resolver, now: Callable[[], float] = time.time) -> str:
    """Handle one queue message; returns what happened (for logs and tests). Raises only for our own
    dependencies (DynamoDB, SQS), so the queue redelivers the message."""
    msg = json.loads(raw)
    user_id, webhook_id, event = msg["userId"], msg["webhookId"], msg["event"]
    attempt = int(msg.get("attempt") or 1)
    started = now()
    not_before = msg.get("notBefore")
    if not_before is not None and float(not_before) - started > 1:
        send(sqs, settings.webhook_queue_url, [msg], delay=math.ceil(float(not_before) - started))
        return "waiting"
    table = settings.table_name
    slots = settings.webhook_max_in_flight
    webhook, delivered, earlier, busy = store.read_delivery(ddb, table, user_id, webhook_id, event["id"], attempt,
                                                            slots, started)
    if webhook is None:
        return "gone"  # deleted since: nothing to send
    if not webhook.enabled:
        return "disabled"
    if event["type"] != WEBHOOK_TEST and event["type"] not in (webhook.events or []):
        return "unsubscribed"
    if delivered:
        return "duplicate"
    if earlier is not None:
        if earlier["status"] is not None:  # recorded by an earlier run of this message: finish what it left
            _follow_up(sqs, ddb, settings, msg, earlier, started)
            return "duplicate"
        if earlier["leaseUntil"] > started:
            return "duplicate"  # a copy of this message is being sent right now

    expires = started + settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
    # Each delivery counts against its own webhook's owner (the webhook lives in their partition).
    owner = user_id
    free = [k for k in range(slots) if k not in busy]
    mine = sum(1 for held_by in busy.values() if held_by == webhook_id)
    if mine >= per_webhook_share(slots):
        free = []  # this webhook has its share: the user's other webhooks keep a slot
    slot = _acquire(ddb, table, owner, free, expires, started, webhook_id) if free else None
    if slot is None:  # this user already has their share of deliveries running: come back later
        deferred = int(msg.get("deferred") or 0) + 1
        send(sqs, settings.webhook_queue_url, [{**msg, "deferred": deferred}], delay=_defer_seconds(webhook, deferred))
        return "deferred"
    try:
        if not store.claim_attempt(ddb, table, user_id, webhook_id, event["id"], attempt, expires=expires,
                                   now_epoch=started):
            return "duplicate"
        response = _attempt(webhook, event, settings, post, resolver, started)
    finally:
        store.free_slot(ddb, table, owner, slot)

    delays = settings.webhook_retry_delays
    ok = response.status is not None and 200 <= response.status < 300
    unusable = response.code in UNUSABLE_URL
    final = not ok and (attempt > len(delays) or unusable)
    status = "delivered" if ok else ("failed" if final else "retrying")
    at = _iso(now())
    ttl = int(started) + settings.webhook_delivery_ttl_days * 86400
    last = {"eventId": event["id"], "type": event["type"], "status": status, "statusCode": response.status,
            "error": response.error, "errorCode": response.code, "attempt": attempt, "at": at,
            "durationMs": response.duration_ms}
    # recorded before anything is queued
    done = store.record_attempt(ddb, table, user_id, webhook_id, event, attempt, status=status,
                                status_code=response.status, error=response.error, error_code=response.code,
                                duration_ms=response.duration_ms, at=at, ttl=ttl)
    if ok:
        if _worth_recording(webhook, started):
            store.record_outcome(webhook, last, delivered=True, at=at)
        return status
    _follow_up(sqs, ddb, settings, msg, done, started)
    if store.record_outcome(webhook, last, delivered=False, at=at):
        if unusable:
            _disable(webhook, f"Disabled automatically: the URL cannot be called ({response.error}). "
                              "Change the URL, then enable the webhook again.")
        else:
            _disable_if_failing_too_long(webhook, settings, now(), response)
    logger.info("webhook delivery failed", extra={"webhookId": webhook_id, "eventId": event["id"],
                                                  "attempt": attempt, "status": status, "errorCode": response.code,
                                                  "statusCode": response.status, "error": response.error})
    return status


# A stored URL that can never be called (from before URLs were normalised, or an http:// one from a
# stage that allowed it): the attempt is the last, and the webhook is disabled with the reason.
UNUSABLE_URL = frozenset({"url_invalid", "url_not_https"})


def _attempt(webhook: "WebhookModel", event: dict, settings: Any, post: Callable[..., outbound.Response],
             resolver: outbound.Resolver, started: float) -> outbound.Response:
    """The POST's outcome; never raises: every failure — a refused or unusable URL, DNS past the
    deadline, a socket error, a bug of ours — is a Response with a stable code and a plain message."""
    clock_start = time.monotonic()
    deadline = clock_start + settings.webhook_timeout_seconds  # DNS + connect + the whole exchange

    def took() -> int:
        return int((time.monotonic() - clock_start) * 1000)

    try:
        url = _normalised_url(webhook)
        target = outbound.check(url, allow_private=settings.webhook_allow_private, resolver=resolver,
                                deadline=deadline)
        body = body_of(event)
        headers = signed_headers(signing_secrets(webhook, int(started)) + _rotated_secrets(webhook, started),
                                 event["id"], int(started), body)
        response = post(target, body, headers, timeout=settings.webhook_timeout_seconds, deadline=deadline)
    except outbound.WebhookUrlError as exc:  # DNS changed since registration, or a stored URL unusable
        return outbound.Response(None, exc.message, took(), exc.code.removeprefix("webhook_"))
    except outbound.DeadlineExceeded:
        return outbound.Response(None, f"The host did not resolve within {settings.webhook_timeout_seconds:g}s",
                                 took(), "timeout")
    except (DependencyError, store.StorageError):
        raise  # our own storage: the queue redelivers the message
    except Exception:  # noqa: BLE001 - every failure of a delivery must become a recorded attempt
        logger.exception("webhook delivery raised", extra={"webhookId": webhook.id, "eventId": event["id"]})
        return outbound.Response(None, "The delivery failed on our side; it will be retried", took(),
                                 "internal_error")
    if response.status is not None and not 200 <= response.status < 300:
        return outbound.Response(response.status, f"The endpoint answered HTTP {response.status}",
                                 response.duration_ms, "http_status")
    return response


def _normalised_url(webhook: "WebhookModel") -> str:
    """The webhook's URL in its ASCII form; a stored URL from before normalisation is rewritten once."""
    url = outbound.normalize(webhook.url)
    if url != webhook.url:
        store.set_url(webhook, url)
    return url


def _rotated_secrets(webhook: "WebhookModel", now_epoch: float) -> list[str]:
    """Secrets handed out by rotations of the last 24 h beyond the current and previous one (two
    concurrent rotations both answered): read only while a rotation's overlap lasts."""
    if not webhook.previous_secret_expires or webhook.previous_secret_expires <= now_epoch:
        return []
    from chalicelib.events.webhooks import rotated_secrets

    known = {webhook.secret, webhook.previous_secret}
    return [s for s in rotated_secrets(webhook, now_epoch) if s not in known]


def _follow_up(sqs: Any, ddb: Any, settings: Any, msg: dict, item: dict, started: float) -> None:
    """After a failed attempt is recorded: queue the next one (or dead-letter the last) unless done."""
    status = item["status"]
    if status not in ("retrying", "failed") or item["nextQueued"]:
        return
    attempt = int(msg.get("attempt") or 1)
    delays = settings.webhook_retry_delays
    if status == "retrying":
        delay = delays[min(attempt, len(delays)) - 1]
        send(sqs, settings.webhook_queue_url,
             [message(msg["userId"], msg["webhookId"], msg["event"], attempt + 1, not_before=started + delay)],
             delay=math.ceil(delay))
    else:
        code = item["statusCode"]
        reason = f"HTTP {code}" if code is not None else (item["error"] or "no answer")
        _dead_letter(sqs, settings, msg, reason)
    store.mark_next_queued(ddb, settings.table_name, msg["userId"], msg["webhookId"], msg["event"]["id"], attempt)


# A success after a success needs no new line on the webhook more often than this (a burst to one
# endpoint would otherwise write its item once per event); failures are always recorded.
LAST_DELIVERY_REFRESH_SECONDS = 10


def _last(webhook: "WebhookModel") -> dict | None:
    return webhook.last_delivery.as_dict() if webhook.last_delivery is not None else None


def _worth_recording(webhook: "WebhookModel", now_epoch: float) -> bool:
    last = _last(webhook)
    if webhook.failing_since or not last or last.get("status") != "delivered":
        return True
    try:
        at = datetime.strptime(last["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except (KeyError, TypeError, ValueError):
        return True
    return now_epoch - at >= LAST_DELIVERY_REFRESH_SECONDS


# ---- fair sharing: a user's deliveries in flight, across all their webhooks ---------------------
# Every delivery holds one of its webhook owner's WEBHOOK_MAX_IN_FLIGHT slots (SLOT#k items under
# U#{uid}#WHSLOTS, expiring after the timeout) while it POSTs — fast or slow, there is no window in
# which a delivery takes none. Without a free slot the message comes back later (no attempt spent).
# With 20 workers and a cap of 4, one user (10 webhooks, a 10 s endpoint, a backlog) holds at most 4
# workers; the others keep serving everyone else.

# A waiting message comes back after about as long as its endpoint takes (at least 1 s, SQS's
# smallest delay), doubling for a message that keeps finding its user busy, at most 8 times that and
# 60 s. Jittered ±50 % so a busy user's waiting messages do not all come back at once.
DEFER_MIN_SECONDS = 1.0
DEFER_MAX_DOUBLINGS = 3


def _defer_seconds(webhook: "WebhookModel", deferred: int) -> int:
    import random

    took = max(DEFER_MIN_SECONDS, ((_last(webhook) or {}).get("durationMs") or 0) / 1000)
    return max(1, round(min(60.0, took * 2 ** min(deferred - 1, DEFER_MAX_DOUBLINGS)) * random.uniform(0.5, 1.5)))


def per_webhook_share(slots: int) -> int:
    """How many of a user's slots one of their webhooks may hold: all but one (when there are two or
    more), so a user's slow endpoint never takes every slot from their other endpoints."""
    return max(1, slots - 1)


def _acquire(ddb: Any, table: str, user_id: str, free: list[int], expires: float, now_epoch: float,
             webhook_id: str = "") -> int | None:
    """One of the slots that looked free, by a conditional put (another worker may take it first)."""
    import random

    for k in random.sample(free, len(free)):
        if store.take_slot(ddb, table, user_id, k, expires=expires, now_epoch=now_epoch, webhook_id=webhook_id):
            return k
    return None


def _disable(webhook: "WebhookModel", reason: str) -> None:
    store.disable(webhook, reason=reason[:500], updated_at=clock.now_iso())
    logger.warning("webhook disabled", extra={"webhookId": webhook.id, "reason": reason[:200]})


def _disable_if_failing_too_long(webhook: "WebhookModel", settings: Any, now_epoch: float,
                                 response: outbound.Response) -> None:
    since = webhook.failing_since
    if not since:
        return
    since_epoch = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    if now_epoch - since_epoch < settings.webhook_disable_after_seconds:
        return
    why = f"HTTP {response.status}" if response.status is not None else (response.error or "no answer")
    _disable(webhook, f"Disabled automatically: every delivery failed since {since} "
                      f"(last: {why}). Fix the endpoint, then enable the webhook again.")


def _dead_letter(sqs: Any, settings: Any, msg: dict, reason: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    url = settings.webhook_dlq_url or (settings.webhook_queue_url + "-dlq" if settings.webhook_queue_url else None)
    if not url:
        raise DependencyError("WEBHOOK_DLQ_URL is not configured")
    try:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(msg, separators=(",", ":")), MessageAttributes={
            "rejectCode": {"DataType": "String", "StringValue": "retries_exhausted"},
            "rejectReason": {"DataType": "String", "StringValue": reason[:256]}})
    except (BotoCoreError, ClientError) as exc:
        raise DependencyError("Could not move the failed delivery to the webhook DLQ") from exc
