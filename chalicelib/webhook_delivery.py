"""Getting events to webhooks: fan-out to one queue message per (webhook, event), then one signed
POST per message, retried through the queue (docs/events.md).

- Signatures follow Standard Webhooks: `webhook-id` (the event id, the same on every retry),
  `webhook-timestamp` (unix seconds) and `webhook-signature` = `v1,` + base64(HMAC-SHA256(key,
  "{id}.{timestamp}.{body}")), one per key, space-separated, while a rotated secret still signs.
- A 2xx answer delivers. Anything else, a refused address or no answer within the timeout is
  retried after WEBHOOK_RETRY_DELAYS: the next attempt is a new message carrying `notBefore`
  (SQS delays at most 15 min, so a longer wait is a chain of delayed hops), so a restart loses
  nothing. After the last attempt the message goes to the webhook DLQ.
- A slow or failing endpoint holds at most WEBHOOK_MAX_IN_FLIGHT workers at once (lease items), so
  the others keep theirs; see _needs_lease.
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
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

from pynamodb.exceptions import UpdateError

from chalicelib import clock, outbound
from chalicelib.aws.db import condition_failed
from chalicelib.errors import DependencyError
from chalicelib.events import WEBHOOK_TEST
from chalicelib.aws.models import WebhookDeliveryModel, WebhookModel, user_pk, webhook_items_pk, webhook_sk
from chalicelib.observability import logger
from chalicelib.webhooks import secret_key, signing_secrets, user_webhooks

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
            webhooks: list[WebhookModel] | None = None) -> int:
    """One message per (enabled webhook of the event's user, subscribed event): one Query (unless the
    caller has the user's webhooks already), one SendMessageBatch per 10 messages."""
    if not events:
        return 0
    hooks = [w for w in (user_webhooks(user_id) if webhooks is None else webhooks) if w.enabled]
    messages = [message(user_id, w.id, e) for e in events for w in hooks if e["type"] in (w.events or [])]
    if messages:
        send(sqs, queue_url, messages)
    return len(messages)


def send_test(sqs: Any, queue_url: str | None, webhook: WebhookModel) -> dict:
    from chalicelib import ids
    from chalicelib.events import test_event

    event = test_event(webhook.id, webhook.user_id, ids.ulid().lower(), clock.now_iso())
    send(sqs, queue_url, [message(webhook.user_id, webhook.id, event)])
    return event


# ---- one delivery --------------------------------------------------------------------------------

def _iso(epoch: float) -> str:
    return clock.iso(datetime.fromtimestamp(epoch, tz=timezone.utc))


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
    items_pk = webhook_items_pk(user_id, webhook_id)
    webhook, delivered = _read(ddb, settings.table_name, user_id, webhook_id, items_pk, event["id"])
    if webhook is None:
        return "gone"  # deleted since: nothing to send
    if not webhook.enabled:
        return "disabled"
    if event["type"] != WEBHOOK_TEST and event["type"] not in (webhook.events or []):
        return "unsubscribed"
    if delivered:
        return "duplicate"

    lease = None
    if _needs_lease(webhook):
        lease = _acquire(ddb, settings.table_name, items_pk, settings.webhook_max_in_flight,
                         started + settings.webhook_timeout_seconds + 20)
        if lease is None:  # this slow endpoint already holds its share of workers: come back later
            deferred = int(msg.get("deferred") or 0) + 1
            send(sqs, settings.webhook_queue_url, [{**msg, "deferred": deferred}], delay=_defer_seconds(webhook, deferred))
            return "deferred"
    body = body_of(event)
    timestamp = int(started)
    try:
        try:
            target = outbound.check(webhook.url, allow_private=settings.webhook_allow_private, resolver=resolver)
        except outbound.WebhookUrlError as exc:  # DNS changed since registration: an attempt that failed
            response = outbound.Response(None, f"{exc.code}: {exc.message}", 0)
        else:
            headers = signed_headers(signing_secrets(webhook, timestamp), event["id"], timestamp, body)
            watchdog = None
            if lease is None and not webhook.slow_since:
                # Flag the endpoint as slow as soon as this request is, not when it ends: the
                # deliveries that read the webhook meanwhile already take a lease.
                watchdog = threading.Timer(SLOW_MS / 1000, _mark_slow, args=(webhook.pk, webhook.sk))
                watchdog.daemon = True
                watchdog.start()
            try:
                response = post(target, body, headers, timeout=settings.webhook_timeout_seconds)
            finally:
                if watchdog is not None:
                    watchdog.cancel()
    finally:
        if lease is not None:
            ddb.delete_item(TableName=settings.table_name, Key={"PK": {"S": items_pk}, "SK": {"S": lease}})

    delays = settings.webhook_retry_delays
    ok = response.status is not None and 200 <= response.status < 300
    final = not ok and attempt > len(delays)
    status = "delivered" if ok else ("failed" if final else "retrying")
    at = _iso(now())
    ttl = int(started) + settings.webhook_delivery_ttl_days * 86400
    record = WebhookDeliveryModel(items_pk, f"D#{at}#{event['id']}#{attempt:02d}", event_id=event["id"],
                                  type=event["type"], attempt=attempt, status=status, status_code=response.status,
                                  error=response.error, duration_ms=response.duration_ms, at=at, ttl=ttl)
    last = {"eventId": event["id"], "type": event["type"], "status": status, "statusCode": response.status,
            "error": response.error, "attempt": attempt, "at": at, "durationMs": response.duration_ms}
    if ok:
        marker = WebhookDeliveryModel(items_pk, f"E#{event['id']}", event_id=event["id"], type=event["type"], at=at,
                                      ttl=ttl)
        _save_both(ddb, settings.table_name, record, marker)
        if _worth_recording(webhook, started, response.duration_ms):
            actions = [WebhookModel.last_delivery.set(last), WebhookModel.failing_since.remove()]
            if response.duration_ms < SLOW_MS:
                actions.append(WebhookModel.slow_since.remove())
            _update(webhook, actions)
        return status
    record.save()

    if not final:
        send(sqs, settings.webhook_queue_url,
             [message(user_id, webhook_id, event, attempt + 1, not_before=started + delays[attempt - 1])],
             delay=math.ceil(delays[attempt - 1]))
    else:
        _dead_letter(sqs, settings, msg, response)
    if _update(webhook, [WebhookModel.last_delivery.set(last),
                         WebhookModel.failing_since.set(WebhookModel.failing_since | at)]):
        _disable_if_failing_too_long(webhook, settings, now(), response)
    logger.info("webhook delivery failed", extra={"webhookId": webhook_id, "eventId": event["id"],
                                                  "attempt": attempt, "status": status,
                                                  "statusCode": response.status, "error": response.error})
    return status


def _read(ddb: Any, table: str, user_id: str, webhook_id: str, items_pk: str,
          event_id: str) -> tuple[WebhookModel | None, bool]:
    """The webhook and whether the event already reached it: one BatchGetItem (strongly consistent)."""
    keys = [{"PK": {"S": user_pk(user_id)}, "SK": {"S": webhook_sk(webhook_id)}},
            {"PK": {"S": items_pk}, "SK": {"S": f"E#{event_id}"}}]
    found: list[dict] = []
    request = {table: {"Keys": keys, "ConsistentRead": True}}
    for _ in range(5):
        answer = ddb.batch_get_item(RequestItems=request)
        found += answer.get("Responses", {}).get(table, [])
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            break
    else:
        raise DependencyError("DynamoDB left keys unprocessed")
    webhook = next((WebhookModel.from_raw_data(i) for i in found if i["SK"]["S"].startswith("WH#")), None)
    return webhook, any(i["SK"]["S"].startswith("E#") for i in found)


def _save_both(ddb: Any, table: str, *items: WebhookDeliveryModel) -> None:
    """The attempt and the delivered marker in one BatchWriteItem."""
    request = {table: [{"PutRequest": {"Item": item.serialize()}} for item in items]}
    for _ in range(5):
        request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        if not request:
            return
    raise DependencyError("DynamoDB left writes unprocessed")


# A success after a success needs no new line on the webhook more often than this (a burst to one
# endpoint would otherwise write its item once per event); failures are always recorded.
LAST_DELIVERY_REFRESH_SECONDS = 10


def _last(webhook: WebhookModel) -> dict | None:
    return webhook.last_delivery.as_dict() if webhook.last_delivery is not None else None


def _worth_recording(webhook: WebhookModel, now_epoch: float, duration_ms: int) -> bool:
    last = _last(webhook)
    if webhook.failing_since or not last or last.get("status") != "delivered":
        return True
    if (duration_ms >= SLOW_MS) != ((last.get("durationMs") or 0) >= SLOW_MS) or \
            (webhook.slow_since and duration_ms < SLOW_MS):
        return True  # became slow, or fast again: the lease rule below reads it
    try:
        at = datetime.strptime(last["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except (KeyError, TypeError, ValueError):
        return True
    return now_epoch - at >= LAST_DELIVERY_REFRESH_SECONDS


# ---- one slow endpoint never takes every worker ------------------------------------------------
# An endpoint that answered slowly (≥ SLOW_MS) or is failing gets at most webhook_max_in_flight
# deliveries at once: each holds a lease item (SLOT#k, expiring after the timeout) while it POSTs;
# without a free slot the message comes back later (not counted as an attempt). Fast endpoints take
# no lease, so they pay nothing for this.
SLOW_MS = 1000


def _needs_lease(webhook: WebhookModel) -> bool:
    last = _last(webhook)
    return bool(webhook.failing_since or webhook.slow_since) or bool(last and (last.get("durationMs") or 0) >= SLOW_MS)


def _mark_slow(pk: str, sk: str) -> None:
    try:
        WebhookModel(pk, sk).update(actions=[WebhookModel.slow_since.set(clock.now_iso())],
                                    condition=WebhookModel.pk.exists())
    except Exception as exc:  # noqa: BLE001 - a hint only; the delivery itself goes on either way
        logger.debug("could not flag a slow webhook", extra={"error": str(exc)})


def _defer_seconds(webhook: WebhookModel, deferred: int) -> int:
    """About as long as the endpoint takes, doubling for a message that keeps finding it busy (jittered,
    so the waiting messages do not all come back at once), at most 60 s: waiting messages cost the
    queue and the table little while the slow endpoint works through its share."""
    import random

    took = max(1.0, ((_last(webhook) or {}).get("durationMs") or 1000) / 1000)
    return max(1, round(min(60.0, took * 2 ** min(deferred - 1, 6)) * random.uniform(0.75, 1.25)))


def _acquire(ddb: Any, table: str, items_pk: str, slots: int, expires: float) -> str | None:
    import random

    now = int(time.time())
    # Two tries, not every slot: a busy endpoint's waiting messages should cost little each time.
    for k in random.sample(range(slots), min(slots, 2)):
        try:
            ddb.put_item(TableName=table, Item={
                "PK": {"S": items_pk}, "SK": {"S": f"SLOT#{k}"}, "expiresAt": {"N": str(int(expires))},
                "ttl": {"N": str(int(expires) + 3600)}},
                ConditionExpression="attribute_not_exists(PK) OR expiresAt < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}})
            return f"SLOT#{k}"
        except ddb.exceptions.ConditionalCheckFailedException:
            continue
    return None


def _update(webhook: WebhookModel, actions: list) -> bool:
    """False when the webhook was deleted meanwhile (nothing left to record on)."""
    try:
        webhook.update(actions=actions, condition=WebhookModel.pk.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def _disable_if_failing_too_long(webhook: WebhookModel, settings: Any, now_epoch: float,
                                 response: outbound.Response) -> None:
    since = webhook.failing_since
    if not since:
        return
    since_epoch = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    if now_epoch - since_epoch < settings.webhook_disable_after_seconds:
        return
    why = f"HTTP {response.status}" if response.status is not None else (response.error or "no answer")
    reason = (f"Disabled automatically: every delivery failed since {since} "
              f"(last: {why}). Fix the endpoint, then enable the webhook again.")[:500]
    _update(webhook, [WebhookModel.enabled.set(False), WebhookModel.disabled_reason.set(reason),
                      WebhookModel.updated_at.set(clock.now_iso())])
    logger.warning("webhook disabled", extra={"webhookId": webhook.id, "failingSince": since})


def _dead_letter(sqs: Any, settings: Any, msg: dict, response: outbound.Response) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    url = settings.webhook_dlq_url or (settings.webhook_queue_url + "-dlq" if settings.webhook_queue_url else None)
    if not url:
        raise DependencyError("WEBHOOK_DLQ_URL is not configured")
    reason = f"HTTP {response.status}" if response.status is not None else (response.error or "no answer")
    try:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(msg, separators=(",", ":")), MessageAttributes={
            "rejectCode": {"DataType": "String", "StringValue": "retries_exhausted"},
            "rejectReason": {"DataType": "String", "StringValue": reason[:256]}})
    except (BotoCoreError, ClientError) as exc:
        raise DependencyError("Could not move the failed delivery to the webhook DLQ") from exc
