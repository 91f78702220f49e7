"""Events' data access, by name: a user's webhooks (`U#{uid}` / `WH#{wid}`) and their count (`U#{uid}` /
WEBHOOKS), a webhook's items (`U#{uid}#WH#{wid}`: delivery attempts `D#…`, delivered markers `E#{eid}`,
attempt claims `A#{eid}#{n}`, rotated secrets `SECRET#…`, the test route's windows `RATE#TEST#{minute}`)
and a user's in-flight delivery slots (`U#{uid}#WHSLOTS` / `SLOT#{k}`).

Operations that join a transaction take the caller's `chalicelib.aws.db.Transaction` and add one named
item to it. The delivery worker's steps use the low-level DynamoDB client it is handed (`ddb`, the
table's name): one call each, as docs/events.md counts them.

    registry    new_webhook, create (tx), count_created (tx), delete (tx), count_deleted (tx), get,
                list_page, all_of, change, add_secret, remove_secret, swap_secret, rotated_secrets,
                count_test_send, list_deliveries
    delivery    read_delivery, claim_attempt, take_slot, free_slot, record_attempt, mark_next_queued,
                record_outcome, disable, set_url
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from chalicelib.aws.db import query_page, update_if
from chalicelib.aws.models import (
    RateWindowModel,
    WebhookCountModel,
    WebhookDeliveryModel,
    WebhookModel,
    WebhookSecretModel,
    user_pk,
    webhook_items_pk,
    webhook_sk,
)
from chalicelib.errors import DependencyError

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.db import Transaction

W = WebhookModel

# What this store's PynamoDB operations raise when DynamoDB fails (the caller lets it through: the
# queue redelivers the message).
StorageError = PynamoDBException


# ---- keys -----------------------------------------------------------------------------------------

def user_slots_pk(user_id: str) -> str:
    """Where a user's in-flight delivery slots live (SLOT#k items with an expiry)."""
    return f"U#{user_id}#WHSLOTS"


def attempt_sk(event_id: str, attempt: int) -> str:
    return f"A#{event_id}#{attempt:02d}"


# ---- the registry ---------------------------------------------------------------------------------

def new_webhook(user_id: str, webhook_id: str, **fields: Any) -> WebhookModel:
    """A new webhook item (not written) in the user's partition."""
    return WebhookModel(user_pk(user_id), webhook_sk(webhook_id), id=webhook_id, user_id=user_id, **fields)


def create(tx: "Transaction", webhook: WebhookModel, *, name: str = "webhook") -> None:
    """Transaction item `name`: Put the new webhook (condition: it does not exist)."""
    tx.save(name, webhook, condition=W.pk.does_not_exist())


def count_created(tx: "Transaction", user_id: str, *, limit: int, name: str = "count") -> None:
    """Transaction item `name`: WEBHOOKS ADD count 1 (condition: absent or below `limit`)."""
    tx.update(name, WebhookCountModel(user_pk(user_id)), actions=[WebhookCountModel.count.add(1)],
              condition=WebhookCountModel.count.does_not_exist() | (WebhookCountModel.count < limit))


def delete(tx: "Transaction", user_id: str, webhook_id: str, *, name: str = "webhook") -> None:
    """Transaction item `name`: Delete the webhook (condition: it exists)."""
    tx.delete(name, WebhookModel(user_pk(user_id), webhook_sk(webhook_id)), condition=W.pk.exists())


def count_deleted(tx: "Transaction", user_id: str, *, name: str = "count") -> None:
    """Transaction item `name`: WEBHOOKS ADD count -1 (no condition)."""
    tx.update(name, WebhookCountModel(user_pk(user_id)), actions=[WebhookCountModel.count.add(-1)])


def get(user_id: str, webhook_id: str, *, consistent: bool = False) -> WebhookModel | None:
    """GetItem `U#{uid}` / `WH#{wid}`; None when there is none."""
    try:
        return WebhookModel.get(user_pk(user_id), webhook_sk(webhook_id), consistent_read=consistent)
    except DoesNotExist:
        return None


def list_page(user_id: str, *, limit: int, start_key: dict | None) -> tuple[list[WebhookModel], dict | None]:
    """A page of the user's webhooks: one Query `U#{uid}`, SK begins_with `WH#`, descending."""
    return query_page(WebhookModel, user_pk(user_id), limit=limit, start_key=start_key,
                      range_key_condition=W.sk.startswith("WH#"))


def all_of(user_id: str) -> list[WebhookModel]:
    """All of the user's webhooks (for the fan-out): one Query (pages of 100; the count is limited)."""
    return list(WebhookModel.query(user_pk(user_id), W.sk.startswith("WH#"), page_size=100))


def change(user_id: str, webhook_id: str, *, updated_at: str, url: str | None = None, events: list[str] | None = None,
           description: str | None = None, enabled: bool | None = None,
           disabled_reason: str | None = None) -> WebhookModel | None:
    """UpdateItem (condition: the webhook exists) of the fields given. `enabled=True` also removes
    `disabledReason` and `failingSince`; `enabled=False` sets `disabledReason`. None when it does not exist."""
    webhook = WebhookModel(user_pk(user_id), webhook_sk(webhook_id))
    actions = [W.updated_at.set(updated_at)]
    if url is not None:
        actions.append(W.url.set(url))
    if events is not None:
        actions.append(W.events.set(events))
    if description is not None:
        actions.append(W.description.set(description))
    if enabled is True:
        actions += [W.enabled.set(True), W.disabled_reason.remove(), W.failing_since.remove()]
    elif enabled is False:
        actions += [W.enabled.set(False), W.disabled_reason.set(disabled_reason)]
    return webhook if update_if(webhook, actions, W.pk.exists()) else None



def add_secret(user_id: str, webhook_id: str, *, secret: str, issued: int, suffix: str, expires: int,
               ttl: int) -> WebhookSecretModel:
    """PutItem `SECRET#{issued}#{suffix}` in the webhook's items: a secret that signs until `expires`."""
    issued_item = WebhookSecretModel(webhook_items_pk(user_id, webhook_id), f"SECRET#{issued}#{suffix}",
                                     secret=secret, expires=expires, ttl=ttl)
    issued_item.save()
    return issued_item


def remove_secret(issued: WebhookSecretModel) -> None:
    """DeleteItem of a secret add_secret wrote."""
    issued.delete()


def swap_secret(webhook: WebhookModel, *, secret: str, expires: int, updated_at: str) -> bool:
    """UpdateItem: `secret` becomes the current one, the current one the previous (signing until
    `expires`). Condition: the stored secret is still the one `webhook` was read with; False otherwise."""
    return update_if(webhook, [W.secret.set(secret), W.previous_secret.set(webhook.secret),
                             W.previous_secret_expires.set(expires), W.updated_at.set(updated_at)],
                   W.secret == webhook.secret)


def rotated_secrets(user_id: str, webhook_id: str) -> list[WebhookSecretModel]:
    """The secrets rotations handed out: one Query (consistent) of the webhook's items, SK begins_with `SECRET#`."""
    return list(WebhookSecretModel.query(webhook_items_pk(user_id, webhook_id),
                                         WebhookSecretModel.sk.startswith("SECRET#"), consistent_read=True))


def count_test_send(user_id: str, webhook_id: str, minute: int, *, limit: int, ttl: int) -> bool:
    """UpdateItem on `RATE#TEST#{minute}` in the webhook's items: ADD count 1, SET ttl (condition:
    absent or below `limit`). False when the minute is full."""
    window = RateWindowModel(webhook_items_pk(user_id, webhook_id), f"RATE#TEST#{minute}")
    return update_if(window, [RateWindowModel.count.add(1), RateWindowModel.ttl.set(ttl)],
                   RateWindowModel.count.does_not_exist() | (RateWindowModel.count < limit))


def list_deliveries(user_id: str, webhook_id: str, *, limit: int,
                    start_key: dict | None) -> tuple[list[WebhookDeliveryModel], dict | None]:
    """A page of the webhook's delivery attempts, newest first: one Query, SK begins_with `D#`."""
    return query_page(WebhookDeliveryModel, webhook_items_pk(user_id, webhook_id), limit=limit,
                      start_key=start_key, range_key_condition=WebhookDeliveryModel.sk.startswith("D#"))


# ---- delivery: the webhook's record of its deliveries ---------------------------------------------

def record_outcome(webhook: WebhookModel, last: dict, *, delivered: bool, at: str) -> bool:
    """UpdateItem (condition: the webhook exists; False when it was deleted): `lastDelivery`; after a
    success `failingSince` removed, after a failure `failingSince` set to `at` unless it is set."""
    failing = W.failing_since.remove() if delivered else W.failing_since.set(W.failing_since | at)
    return update_if(webhook, [W.last_delivery.set(last), failing], W.pk.exists())


def disable(webhook: WebhookModel, *, reason: str, updated_at: str) -> bool:
    """UpdateItem (condition: the webhook exists; False otherwise): `enabled` false, `disabledReason`."""
    return update_if(webhook, [W.enabled.set(False), W.disabled_reason.set(reason), W.updated_at.set(updated_at)],
                   W.pk.exists())


def set_url(webhook: WebhookModel, url: str) -> bool:
    """UpdateItem: `url` (condition: the stored URL is the one `webhook` was read with; False otherwise)."""
    return update_if(webhook, [W.url.set(url)], W.url == webhook.url)


# ---- delivery: one message's items, through the DynamoDB client -----------------------------------
# An attempt item (`A#{eid}#{n}`) is shown to the caller as a plain dict: `status` (delivered |
# retrying | failed, None until recorded), `statusCode`, `error`, `nextQueued`, `leaseUntil`.

def _attempt_view(item: dict) -> dict:
    return {"status": item.get("status", {}).get("S"),
            "statusCode": int(item["statusCode"]["N"]) if "statusCode" in item else None,
            "error": item.get("error", {}).get("S"), "nextQueued": bool(item.get("nextQueued", {}).get("BOOL")),
            "leaseUntil": float(item.get("leaseUntil", {}).get("N", 0))}


def read_delivery(ddb: Any, table: str, user_id: str, webhook_id: str, event_id: str, attempt: int, slots: int,
                  now_epoch: float) -> tuple[WebhookModel | None, bool, dict | None, dict[int, str]]:
    """One BatchGetItem (strongly consistent; unprocessed keys asked again, at most 5 calls, then
    DependencyError): the webhook, whether the event's delivered marker exists, this attempt's item
    (as a plain dict, None if no run wrote one) and the user's slots still held (k → webhook id)."""
    items_pk = webhook_items_pk(user_id, webhook_id)
    a_sk = attempt_sk(event_id, attempt)
    keys = [{"PK": {"S": user_pk(user_id)}, "SK": {"S": webhook_sk(webhook_id)}},
            {"PK": {"S": items_pk}, "SK": {"S": f"E#{event_id}"}},
            {"PK": {"S": items_pk}, "SK": {"S": a_sk}}]
    keys += [{"PK": {"S": user_slots_pk(user_id)}, "SK": {"S": f"SLOT#{k}"}} for k in range(slots)]
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
    earlier = next((_attempt_view(i) for i in found if i["SK"]["S"] == a_sk), None)
    busy = {int(i["SK"]["S"].split("#", 1)[1]): i.get("webhookId", {}).get("S", "") for i in found
            if i["SK"]["S"].startswith("SLOT#") and float(i.get("expiresAt", {}).get("N", 0)) >= int(now_epoch)}
    return webhook, any(i["SK"]["S"].startswith("E#") for i in found), earlier, busy


def take_slot(ddb: Any, table: str, user_id: str, k: int, *, expires: float, now_epoch: float,
              webhook_id: str) -> bool:
    """PutItem `SLOT#{k}` of the user's slots, held by `webhook_id` until `expires` (condition: free —
    absent or expired). False when another delivery holds it."""
    try:
        ddb.put_item(TableName=table, Item={
            "PK": {"S": user_slots_pk(user_id)}, "SK": {"S": f"SLOT#{k}"}, "expiresAt": {"N": str(int(expires))},
            "webhookId": {"S": webhook_id},
            "ttl": {"N": str(int(expires) + 3600)}},
            ConditionExpression="attribute_not_exists(PK) OR expiresAt < :now",
            ExpressionAttributeValues={":now": {"N": str(int(now_epoch))}})
        return True
    except ddb.exceptions.ConditionalCheckFailedException:
        return False


def free_slot(ddb: Any, table: str, user_id: str, k: int) -> None:
    """DeleteItem `SLOT#{k}` of the user's slots."""
    ddb.delete_item(TableName=table, Key={"PK": {"S": user_slots_pk(user_id)}, "SK": {"S": f"SLOT#{k}"}})


def claim_attempt(ddb: Any, table: str, user_id: str, webhook_id: str, event_id: str, attempt: int, *,
                  expires: float, now_epoch: float) -> bool:
    """PutItem of the attempt's item with a lease until `expires` (condition: absent, or not recorded
    and its lease over). False when another run recorded it or holds a live claim."""
    try:
        ddb.put_item(TableName=table, Item={
            "PK": {"S": webhook_items_pk(user_id, webhook_id)}, "SK": {"S": attempt_sk(event_id, attempt)},
            "leaseUntil": {"N": str(round(expires, 3))}, "ttl": {"N": str(int(expires) + 40 * 86400)}},
            ConditionExpression="attribute_not_exists(PK) OR (attribute_not_exists(#s) AND leaseUntil < :now)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":now": {"N": str(round(now_epoch, 3))}})
        return True
    except ddb.exceptions.ConditionalCheckFailedException:
        return False


def record_attempt(ddb: Any, table: str, user_id: str, webhook_id: str, event: dict, attempt: int, *,
                   status: str, status_code: int | None, error: str | None, error_code: str | None,
                   duration_ms: int | None, at: str, ttl: int) -> dict:
    """One BatchWriteItem (unprocessed items sent again, at most 5 calls, then DependencyError): the
    history row `D#{at}#{eid}#{n}`, the attempt's item with its outcome (replacing the claim) and,
    when `delivered`, the event's delivered marker `E#{eid}`. The attempt as a plain dict."""
    items_pk = webhook_items_pk(user_id, webhook_id)
    record = WebhookDeliveryModel(items_pk, f"D#{at}#{event['id']}#{attempt:02d}", event_id=event["id"],
                                  type=event["type"], attempt=attempt, status=status, status_code=status_code,
                                  error=error, error_code=error_code, duration_ms=duration_ms, at=at, ttl=ttl)
    done = {"PK": {"S": items_pk}, "SK": {"S": attempt_sk(event["id"], attempt)}, "status": {"S": status},
            "ttl": {"N": str(ttl)}}
    if status_code is not None:
        done["statusCode"] = {"N": str(status_code)}
    if error:
        done["error"] = {"S": error}
    items = [record.serialize(), done]
    if status == "delivered":
        marker = WebhookDeliveryModel(items_pk, f"E#{event['id']}", event_id=event["id"], type=event["type"], at=at,
                                      ttl=ttl)
        items = [record.serialize(), marker.serialize(), done]
    request = {table: [{"PutRequest": {"Item": item}} for item in items]}
    for _ in range(5):
        request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        if not request:
            return _attempt_view(done)
    raise DependencyError("DynamoDB left writes unprocessed")


def mark_next_queued(ddb: Any, table: str, user_id: str, webhook_id: str, event_id: str, attempt: int) -> None:
    """UpdateItem: the attempt's follow-up (the next attempt's message, or the DLQ) was sent."""
    ddb.update_item(TableName=table, Key={"PK": {"S": webhook_items_pk(user_id, webhook_id)},
                                          "SK": {"S": attempt_sk(event_id, attempt)}},
                    UpdateExpression="SET nextQueued = :t", ExpressionAttributeValues={":t": {"BOOL": True}})
