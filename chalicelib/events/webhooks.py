"""A user's webhooks: registration, changes, secrets and their delivery history (docs/events.md).

Every webhook lives in its user's partition (U#{uid} / WH#{wid}), so a foreign id is simply not
found (404), and the fan-out finds all of one user's webhooks with one Query. The per-user limit is
a counter item written in the same transaction as the webhook, so concurrent creates never pass it.
"""
from __future__ import annotations

import base64
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from chalicelib import clock, ids

from chalicelib.events import outbound, store
from chalicelib.aws.db import Transaction, TransactionCancelled
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.events.mapping import EVENT_TYPES, WEBHOOK_TEST

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import WebhookDeliveryModel, WebhookModel

SUBSCRIBABLE = tuple(t for t in EVENT_TYPES if t != WEBHOOK_TEST)
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_OVERLAP_SECONDS = 24 * 3600


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the bytes the base64 after `whsec_` encodes (Standard Webhooks)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signing_secrets(webhook: "WebhookModel", now_epoch: int) -> list[str]:
    """The current secret, and during the overlap after a rotation the previous one too."""
    secrets = [webhook.secret]
    if webhook.previous_secret and (webhook.previous_secret_expires or 0) > now_epoch:
        secrets.append(webhook.previous_secret)
    return secrets


def to_json(webhook: "WebhookModel", *, secret: str | None = None) -> dict:
    last = webhook.last_delivery.as_dict() if webhook.last_delivery is not None else None
    body = {
        "id": webhook.id,
        "url": webhook.url,
        "description": webhook.description or "",
        "events": list(webhook.events or []),
        "enabled": bool(webhook.enabled),
        "disabledReason": webhook.disabled_reason,
        "failingSince": webhook.failing_since,
        "lastDelivery": _last_json(last),
        "secretRotatedAt": None if webhook.previous_secret_expires is None else clock.iso(datetime.fromtimestamp(
            int(webhook.previous_secret_expires) - ROTATION_OVERLAP_SECONDS, tz=timezone.utc)),
        "createdAt": webhook.created_at,
        "updatedAt": webhook.updated_at,
    }
    if secret is not None:
        body["secret"] = secret
    return body


def _last_json(last: dict | None) -> dict | None:
    if not last:
        return None
    return {"eventId": last.get("eventId"), "type": last.get("type"), "status": last.get("status"),
            "statusCode": int(last["statusCode"]) if last.get("statusCode") is not None else None,
            "error": last.get("error"), "errorCode": last.get("errorCode"),
            "attempt": int(last.get("attempt") or 0), "at": last.get("at"),
            "durationMs": int(last["durationMs"]) if last.get("durationMs") is not None else None}


def delivery_json(item: "WebhookDeliveryModel") -> dict:
    return {"eventId": item.event_id, "type": item.type, "attempt": int(item.attempt or 0), "status": item.status,
            "statusCode": int(item.status_code) if item.status_code is not None else None, "error": item.error,
            "errorCode": item.error_code,
            "durationMs": int(item.duration_ms) if item.duration_ms is not None else None, "at": item.at}


def _not_found(webhook_id: str) -> NotFoundError:
    return NotFoundError("Webhook not found", details={"webhookId": webhook_id})


def _event_types(events: Iterable[str] | None) -> list[str]:
    return list(SUBSCRIBABLE) if not events else sorted(set(events))


# ---- registry ---------------------------------------------------------------------------------

def create_webhook(connection: Any, settings: Any, user_id: str, url: str, events: list[str] | None,
                   description: str) -> tuple["WebhookModel", str]:
    outbound.check(url, allow_private=settings.webhook_allow_private)
    url = outbound.normalize(url)  # stored and called in its ASCII form (IDNA host, %-encoded path)
    webhook_id = ids.new_id("whk")
    now = clock.now_iso()
    secret = new_secret()
    webhook = store.new_webhook(user_id, webhook_id, url=url, description=description or "",
                                events=_event_types(events), enabled=True, secret=secret, created_at=now,
                                updated_at=now)
    limit = settings.webhook_max_per_user
    try:
        with Transaction(connection) as tx:
            store.create(tx, webhook)
            store.count_created(tx, user_id, limit=limit)
    except TransactionCancelled as cancelled:
        if cancelled.failed("count"):
            raise ConflictError(f"You already have {limit} webhooks; delete one first", code="webhook_limit",
                                details={"limit": limit}) from None
        raise
    return webhook, secret


def get_webhook(user_id: str, webhook_id: str, *, consistent: bool = False) -> "WebhookModel":
    webhook = store.get(user_id, webhook_id, consistent=consistent)
    if webhook is None:
        raise _not_found(webhook_id)
    return webhook


def list_webhooks(user_id: str, *, limit: int, start_key: dict | None) -> tuple[list["WebhookModel"], dict | None]:
    return store.list_page(user_id, limit=limit, start_key=start_key)


def user_webhooks(user_id: str) -> list["WebhookModel"]:
    """All of a user's webhooks for the fan-out: one Query (at most webhook_max_per_user items)."""
    return store.all_of(user_id)


def update_webhook(settings: Any, user_id: str, webhook_id: str, *, url: str | None = None,
                   events: list[str] | None = None, description: str | None = None,
                   enabled: bool | None = None) -> "WebhookModel":
    if url is not None:
        outbound.check(url, allow_private=settings.webhook_allow_private)
        url = outbound.normalize(url)
    # Turning it back on forgets why it was off and how long it had failed (store.change).
    webhook = store.change(user_id, webhook_id, updated_at=clock.now_iso(), url=url,
                           events=_event_types(events) if events is not None else None, description=description,
                           enabled=enabled, disabled_reason="Disabled by you" if enabled is False else None)
    if webhook is None:
        raise _not_found(webhook_id)
    return webhook


def delete_webhook(connection: Any, user_id: str, webhook_id: str) -> None:
    """Its pending deliveries find it gone and stop; its history expires with its TTL."""
    try:
        with Transaction(connection) as tx:
            store.delete(tx, user_id, webhook_id)
            store.count_deleted(tx, user_id)
    except TransactionCancelled as cancelled:
        if cancelled.failed("webhook"):
            raise _not_found(webhook_id) from None
        raise


def rotate_secret(user_id: str, webhook_id: str) -> tuple["WebhookModel", str]:
    """A new secret now; the old one still signs (beside it) for ROTATION_OVERLAP_SECONDS.

    The new secret is first written as an item of its own (WebhookSecretModel) that signs for the
    overlap whatever happens to the webhook item, then made the current one. Two rotations at the
    same moment: one gets 409; and should both pass (a store whose conditions are not atomic, such as
    the emulators), each answered secret still signs, from its own item."""
    current = get_webhook(user_id, webhook_id, consistent=True)
    secret = new_secret()
    now = clock.now()
    expires = clock.epoch(now) + ROTATION_OVERLAP_SECONDS
    issued = store.add_secret(user_id, webhook_id, secret=secret, issued=clock.epoch(now),
                              suffix=base64.b32encode(os.urandom(5)).decode(), expires=expires, ttl=expires + 3600)
    try:
        # Two rotations at once: only one may make its secret the current one.
        swapped = store.swap_secret(current, secret=secret, expires=expires, updated_at=clock.iso(now))
    except store.StorageError:
        store.remove_secret(issued)
        raise
    if not swapped:
        store.remove_secret(issued)
        raise ConflictError("The secret was rotated at the same time; try again", code="conflict")
    return current, secret


def rotated_secrets(webhook: "WebhookModel", now_epoch: float) -> list[str]:
    """Every secret a rotation handed out that still signs (one Query, only during an overlap)."""
    return [i.secret for i in store.rotated_secrets(webhook.user_id, webhook.id) if i.expires > now_epoch]


def admit_test(user_id: str, webhook_id: str, per_minute: int) -> None:
    """POST /webhooks/{id}/test: at most `per_minute` per webhook in each clock minute, else 429 with
    Retry-After (the seconds to the next minute). A conditional counter, so concurrent calls never pass it."""
    from chalicelib.errors import QuotaExceededError

    second = clock.epoch(clock.now())
    minute = second // 60
    if not store.count_test_send(user_id, webhook_id, minute, limit=per_minute, ttl=minute * 60 + 180):
        raise QuotaExceededError(f"At most {per_minute} test events per minute for a webhook; try again later",
                                 retry_after=max(1, (minute + 1) * 60 - second),
                                 details={"limit": per_minute, "per": "minute", "kind": "webhook_test"})


def list_deliveries(user_id: str, webhook_id: str, *, limit: int,
                    start_key: dict | None) -> tuple[list["WebhookDeliveryModel"], dict | None]:
    get_webhook(user_id, webhook_id)  # another user's id: 404, not an empty list
    return store.list_deliveries(user_id, webhook_id, limit=limit, start_key=start_key)
