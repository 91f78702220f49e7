"""/webhooks routes: a user's endpoints for signed events (docs/events.md)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import Cursors, json_response, no_content, operation, parse_body, parse_query, user_id
from chalicelib.dependencies import get_deps

bp = Blueprint(__name__)
TAGS = ("webhooks",)
JSON = ["application/json"]
S = "events.webhook_schemas."


@bp.route("/webhooks", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Register a webhook; the answer shows its signing secret, the only time it is shown", tags=TAGS,
           request=S + "WebhookCreate", response=S + "WebhookWithSecret", status=201, errors=(400, 401, 409, 413), role="user")
def create_webhook():
    from chalicelib.events import webhooks

    request = bp.current_request
    uid = user_id(request)
    body = parse_body(request, S + "WebhookCreate")
    deps = get_deps()
    webhook, secret = webhooks.create_webhook(deps.dynamodb, deps.settings, uid, body.url, body.events,
                                              body.description)
    return json_response(webhooks.to_json(webhook, secret=secret), status=201)


@bp.route("/webhooks", methods=["GET"], authorizer=jwt_auth)
@operation("List your webhooks, newest first", tags=TAGS, query="ListQuery", response="Page[" + S + "Webhook]", role="user")
def list_webhooks():
    from chalicelib.events import webhooks

    request = bp.current_request
    uid = user_id(request)
    query = parse_query(request, "ListQuery")
    cursors = Cursors(uid, "webhooks")
    items, last_key = webhooks.list_webhooks(uid, limit=query.limit, start_key=cursors.decode(query.cursor))
    return json_response(cursors.page([webhooks.to_json(w) for w in items], last_key))


@bp.route("/webhooks/{webhook_id}", methods=["GET"], authorizer=jwt_auth)
@operation("Read a webhook (without its secret)", tags=TAGS, response=S + "Webhook", role="user")
def get_webhook(webhook_id: str):
    from chalicelib.events import webhooks

    uid = user_id(bp.current_request)
    return json_response(webhooks.to_json(webhooks.get_webhook(uid, webhook_id)))


@bp.route("/webhooks/{webhook_id}", methods=["PUT"], authorizer=jwt_auth, content_types=JSON)
@operation("Change a webhook's URL, events or description, or enable/disable it", tags=TAGS,
           request=S + "WebhookUpdate", response=S + "Webhook", errors=(400, 401, 404, 413), role="user")
def update_webhook(webhook_id: str):
    from chalicelib.events import webhooks

    request = bp.current_request
    uid = user_id(request)
    body = parse_body(request, S + "WebhookUpdate")
    webhook = webhooks.update_webhook(get_deps().settings, uid, webhook_id, url=body.url, events=body.events,
                                      description=body.description, enabled=body.enabled)
    return json_response(webhooks.to_json(webhook))


@bp.route("/webhooks/{webhook_id}", methods=["DELETE"], authorizer=jwt_auth)
@operation("Remove a webhook; deliveries still queued for it are dropped", tags=TAGS, status=204, role="user")
def delete_webhook(webhook_id: str):
    from chalicelib.events import webhooks

    uid = user_id(bp.current_request)
    webhooks.delete_webhook(get_deps().dynamodb, uid, webhook_id)
    return no_content()


@bp.route("/webhooks/{webhook_id}/rotate-secret", methods=["POST"], authorizer=jwt_auth)
@operation("Issue a new signing secret; for 24 h deliveries carry signatures of both", tags=TAGS,
           response=S + "WebhookWithSecret", errors=(400, 401, 404, 409), role="user")
def rotate_secret(webhook_id: str):
    from chalicelib.events import webhooks

    uid = user_id(bp.current_request)
    webhook, secret = webhooks.rotate_secret(uid, webhook_id)
    return json_response(webhooks.to_json(webhook, secret=secret))


@bp.route("/webhooks/{webhook_id}/test", methods=["POST"], authorizer=jwt_auth)
@operation("Send a webhook.test event to the webhook (delivered like any event)", tags=TAGS,
           response=S + "WebhookTestSent", status=202, errors=(400, 401, 404, 409, 429, 503), role="user")
def test_webhook(webhook_id: str):
    from chalicelib.events import webhooks
    from chalicelib.events import delivery

    uid = user_id(bp.current_request)
    deps = get_deps()
    webhook = webhooks.get_webhook(uid, webhook_id, consistent=True)
    if not webhook.enabled:
        from chalicelib.errors import ConflictError

        raise ConflictError("The webhook is disabled; enable it first", code="webhook_disabled",
                            details={"reason": webhook.disabled_reason})
    webhooks.admit_test(uid, webhook_id, deps.settings.webhook_test_per_minute)
    event = delivery.send_test(deps.sqs, deps.settings.webhook_queue_url, webhook)
    return json_response({"event": event}, status=202)


@bp.route("/webhooks/{webhook_id}/deliveries", methods=["GET"], authorizer=jwt_auth)
@operation("Recent delivery attempts, newest first", tags=TAGS, query="ListQuery",
           response="Page[" + S + "WebhookDelivery]", role="user")
def list_deliveries(webhook_id: str):
    from chalicelib.events import webhooks

    request = bp.current_request
    uid = user_id(request)
    query = parse_query(request, "ListQuery")
    cursors = Cursors(uid, f"webhook-deliveries:{webhook_id}")
    items, last_key = webhooks.list_deliveries(uid, webhook_id, limit=query.limit,
                                               start_key=cursors.decode(query.cursor))
    return json_response(cursors.page([webhooks.delivery_json(d) for d in items], last_key))
