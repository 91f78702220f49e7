"""Usage routes: report a use of an avatar over HTTP, read its usage history, and the user's stats."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib import clock, ids
from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import Cursors, caller_id, for_member, json_response, operation, parse_body, parse_query, user_id
from chalicelib.dependencies import get_deps

bp = Blueprint(__name__)
TAGS = ("usage",)
JSON = ["application/json"]
USAGE_IDEMPOTENCY_HEADER = {
    "Idempotency-Key": "Optional; used when the body has no eventId. Retries with the same key (same app) "
                       "are recorded once, within USAGE_DEDUPE_DAYS."}


def event_id_from(key: str) -> str:
    """The eventId a report without one gets from its Idempotency-Key: a digest, so it stays within the
    eventId pattern and never collides with an eventId a client chose itself (those cannot start
    `idem:` + 40 hex digits by accident). Dedupe is then the usual (user, app, eventId)."""
    import hashlib

    return "idem:" + hashlib.sha256(key.encode()).hexdigest()[:40]


@bp.route("/avatars/{avatar_id}/usage", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Report a use of your avatar by an app (201 recorded, 200 when this eventId was already recorded)",
           tags=TAGS, request="UsageEventPost", response="UsageRecorded", status=201,
           errors=(400, 401, 404, 409, 413, 429), headers=USAGE_IDEMPOTENCY_HEADER, role="viewer")
def post_usage(avatar_id: str):
    from chalicelib.usage import service as usage
    from chalicelib.api.generations import idempotency_key

    request = bp.current_request
    uid = user_id(request)
    key = idempotency_key(request)  # validated even when an eventId makes it unnecessary
    body = parse_body(request, "UsageEventPost")
    fields = body.model_dump()
    # Without an eventId, a retried request must not count twice: the Idempotency-Key names the use.
    # With neither, each request is a new use (a generated id), as before.
    event_id = body.eventId or (event_id_from(key) if key else ids.new_id("evt"))
    fields.update(userId=uid, avatarId=avatar_id, eventId=event_id,
                  occurredAt=body.occurredAt or clock.now_iso())
    deps = get_deps()
    event = usage.build_event(fields)
    if not for_member(request):
        # The caller's own window, counted once: a member's report runs this view a second time as the
        # shared project's home user (recorded on the home avatar), and that run is the same request.
        usage.admit(caller_id(request), deps.settings.usage_rate_per_second, refused=deps.refused_seconds)
    outcome = usage.record_usage(deps.dynamodb, event, dedupe_days=deps.settings.usage_dedupe_days)
    return json_response(outcome.to_json(), status=201 if outcome.status == usage.RECORDED else 200)


@bp.route("/avatars/{avatar_id}/usage-history", methods=["GET"], authorizer=jwt_auth)
@operation("An avatar's usage, newest first, with a summary by app", tags=TAGS, query="ListQuery",
           response="UsageHistory", role="viewer")
def usage_history(avatar_id: str):
    from chalicelib.usage import service as usage

    request = bp.current_request
    uid = user_id(request)
    query = parse_query(request, "ListQuery")
    cursors = Cursors(uid, f"usage:{avatar_id}")
    items, last_key, summary = usage.usage_history(uid, avatar_id, limit=query.limit,
                                                   start_key=cursors.decode(query.cursor))
    return json_response({**cursors.page(items, last_key), "summary": summary})


@bp.route("/stats", methods=["GET"], authorizer=jwt_auth)
@operation("Your totals: avatars by source, recent uploads, usage", tags=TAGS, response="Stats", errors=(401,), role="user")
def get_stats():
    from chalicelib.usage import service as usage

    return json_response(usage.stats(user_id(bp.current_request)))
