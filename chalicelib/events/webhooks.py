"""A user's webhooks: registration, changes, secrets and their delivery history (docs/events.md).

Every webhook lives in its user's partition (U#{uid} / WH#{wid}), so a foreign id is simply not
found (404), and the fan-out finds all of one user's webhooks with one Query. The per-user limit is
a counter item written in the same transaction as the webhook, so concurrent creates never pass it.
"""
from __future__ import annotations

import base64
import os
from datetime import datetime, timezone
from typing import Any, Iterable

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import clock, ids

from chalicelib.events import outbound
from chalicelib.aws.db import Transaction, TransactionCancelled, condition_failed, query_page
from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.events.mapping import EVENT_TYPES, WEBHOOK_TEST
from chalicelib.aws.models import (
    WebhookCountModel,
    WebhookDeliveryModel,
    WebhookModel,
    WebhookSecretModel,
    user_pk,
    webhook_items_pk,
    webhook_sk,
)

SUBSCRIBABLE = tuple(t for t in EVENT_TYPES if t != WEBHOOK_TEST)
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_OVERLAP_SECONDS = 24 * 3600


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the bytes the base64 after `whsec_` encodes (Standard Webhooks)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signing_secrets(webhook: WebhookModel, now_epoch: int) -> list[str]:
    """The current secret, and during the overlap after a rotation the previous one too."""
    secrets = [webhook.secret]
    if webhook.previous_secret and (webhook.previous_secret_expires or 0) > now_epoch:
        secrets.append(webhook.previous_secret)
    return secrets


def to_json(webhook: WebhookModel, *, secret: str | None = None) -> dict:
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


def delivery_json(item: WebhookDeliveryModel) -> dict:
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
                   description: str) -> tuple[WebhookModel, str]:
    outbound.check(url, allow_private=settings.webhook_allow_private)
    url = outbound.normalize(url)  # stored and called in its ASCII form (IDNA host, %-encoded path)
    webhook_id = ids.new_id("whk")
    now = clock.now_iso()
    secret = new_secret()
    webhook = WebhookModel(user_pk(user_id), webhook_sk(webhook_id), id=webhook_id, user_id=user_id, url=url,
                           description=description or "", events=_event_types(events), enabled=True,
                           secret=secret, created_at=now, updated_at=now)
    limit = settings.webhook_max_per_user
    try:
        with Transaction(connection) as tx:
            tx.save("webhook", webhook, condition=WebhookModel.pk.does_not_exist())
            tx.update("count", WebhookCountModel(user_pk(user_id)), actions=[WebhookCountModel.count.add(1)],
                      condition=WebhookCountModel.count.does_not_exist() | (WebhookCountModel.count < limit))
    except TransactionCancelled as cancelled:
        if cancelled.failed("count"):
            raise ConflictError(f"You already have {limit} webhooks; delete one first", code="webhook_limit",
                                details={"limit": limit}) from None
        raise
    return webhook, secret


def get_webhook(user_id: str, webhook_id: str, *, consistent: bool = False) -> WebhookModel:
    try:
        return WebhookModel.get(user_pk(user_id), webhook_sk(webhook_id), consistent_read=consistent)
    except DoesNotExist:
        raise _not_found(webhook_id) from None


def list_webhooks(user_id: str, *, limit: int, start_key: dict | None) -> tuple[list[WebhookModel], dict | None]:
    return query_page(WebhookModel, user_pk(user_id), limit=limit, start_key=start_key,
                      range_key_condition=WebhookModel.sk.startswith("WH#"))


def user_webhooks(user_id: str) -> list[WebhookModel]:
    """All of a user's webhooks for the fan-out: one Query (at most webhook_max_per_user items)."""
    return list(WebhookModel.query(user_pk(user_id), WebhookModel.sk.startswith("WH#"), page_size=100))


def update_webhook(settings: Any, user_id: str, webhook_id: str, *, url: str | None = None,
                   events: list[str] | None = None, description: str | None = None,
                   enabled: bool | None = None) -> WebhookModel:
    if url is not None:
        outbound.check(url, allow_private=settings.webhook_allow_private)
        url = outbound.normalize(url)
    webhook = WebhookModel(user_pk(user_id), webhook_sk(webhook_id))
    actions = [WebhookModel.updated_at.set(clock.now_iso())]
    if url is not None:
        actions.append(WebhookModel.url.set(url))
    if events is not None:
        actions.append(WebhookModel.events.set(_event_types(events)))
    if description is not None:
        actions.append(WebhookModel.description.set(description))
    if enabled is True:  # turning it back on forgets why it was off and how long it had failed
        actions += [WebhookModel.enabled.set(True), WebhookModel.disabled_reason.remove(),
                    WebhookModel.failing_since.remove()]
    elif enabled is False:
        actions += [WebhookModel.enabled.set(False), WebhookModel.disabled_reason.set("Disabled by you")]
    try:
        webhook.update(actions=actions, condition=WebhookModel.pk.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            raise _not_found(webhook_id) from None
        raise
    return webhook


def delete_webhook(connection: Any, user_id: str, webhook_id: str) -> None:
    """Its pending deliveries find it gone and stop; its history expires with its TTL."""
    try:
        with Transaction(connection) as tx:
            tx.delete("webhook", WebhookModel(user_pk(user_id), webhook_sk(webhook_id)),
                      condition=WebhookModel.pk.exists())
            tx.update("count", WebhookCountModel(user_pk(user_id)), actions=[WebhookCountModel.count.add(-1)])
    except TransactionCancelled as cancelled:
        if cancelled.failed("webhook"):
            raise _not_found(webhook_id) from None
        raise


def rotate_secret(user_id: str, webhook_id: str) -> tuple[WebhookModel, str]:
    """A new secret now; the old one still signs (beside it) for ROTATION_OVERLAP_SECONDS.

    The new secret is first written as an item of its own (WebhookSecretModel) that signs for the
    overlap whatever happens to the webhook item, then made the current one. Two rotations at the
    same moment: one gets 409; and should both pass (a store whose conditions are not atomic, such as
    the emulators), each answered secret still signs, from its own item."""
    current = get_webhook(user_id, webhook_id, consistent=True)
    secret = new_secret()
    now = clock.now()
    expires = clock.epoch(now) + ROTATION_OVERLAP_SECONDS
    issued = WebhookSecretModel(webhook_items_pk(user_id, webhook_id),
                                f"SECRET#{clock.epoch(now)}#{base64.b32encode(os.urandom(5)).decode()}",
                                secret=secret, expires=expires, ttl=expires + 3600)
    issued.save()
    try:
        current.update(actions=[
            WebhookModel.secret.set(secret), WebhookModel.previous_secret.set(current.secret),
            WebhookModel.previous_secret_expires.set(expires),
            WebhookModel.updated_at.set(clock.iso(now))],
            # Two rotations at once: only one may make its secret the current one.
            condition=WebhookModel.secret == current.secret)
    except UpdateError as exc:
        issued.delete()
        if condition_failed(exc):
            raise ConflictError("The secret was rotated at the same time; try again", code="conflict") from None
        raise
    return current, secret


def rotated_secrets(webhook: WebhookModel, now_epoch: float) -> list[str]:
    """Every secret a rotation handed out that still signs (one Query, only during an overlap)."""
    items = WebhookSecretModel.query(webhook_items_pk(webhook.user_id, webhook.id),
                                     WebhookSecretModel.sk.startswith("SECRET#"), consistent_read=True)
    return [i.secret for i in items if i.expires > now_epoch]


def admit_test(user_id: str, webhook_id: str, per_minute: int) -> None:
    """POST /webhooks/{id}/test: at most `per_minute` per webhook in each clock minute, else 429 with
    Retry-After (the seconds to the next minute). A conditional counter, so concurrent calls never pass it."""
    from chalicelib.aws.models import RateWindowModel
    from chalicelib.errors import QuotaExceededError

    second = clock.epoch(clock.now())
    minute = second // 60
    window = RateWindowModel(webhook_items_pk(user_id, webhook_id), f"RATE#TEST#{minute}")
    try:
        window.update(actions=[RateWindowModel.count.add(1), RateWindowModel.ttl.set(minute * 60 + 180)],
                      condition=RateWindowModel.count.does_not_exist() | (RateWindowModel.count < per_minute))
    except UpdateError as exc:
        if condition_failed(exc):
            raise QuotaExceededError(f"At most {per_minute} test events per minute for a webhook; try again later",
                                     retry_after=max(1, (minute + 1) * 60 - second),
                                     details={"limit": per_minute, "per": "minute", "kind": "webhook_test"}) from None
        raise


def list_deliveries(user_id: str, webhook_id: str, *, limit: int,
                    start_key: dict | None) -> tuple[list[WebhookDeliveryModel], dict | None]:
    get_webhook(user_id, webhook_id)  # another user's id: 404, not an empty list
    return query_page(WebhookDeliveryModel, webhook_items_pk(user_id, webhook_id), limit=limit,
                      start_key=start_key, range_key_condition=WebhookDeliveryModel.sk.startswith("D#"))
