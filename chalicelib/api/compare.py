"""The compare route (issue 29): 2–4 avatars of a project side by side with their use per app per day."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import json_response, operation, user_id
from chalicelib.dependencies import get_deps

bp = Blueprint(__name__)
TAGS = ("usage",)


@bp.route("/projects/{project_id}/compare", methods=["GET"], authorizer=jwt_auth)
@operation("Compare 2-4 of a project's avatars: attributes, persona, pictures, and their use per app per day "
           "over the last `days` UTC days (400: not 2-4 distinct avatar ids, days out of 1-90; 404: the project "
           "or an avatar is not yours, or not in this project)",
           tags=TAGS, query="usage.compare_schemas.CompareQuery", response="usage.compare_schemas.Comparison", role="viewer")
def compare_avatars(project_id: str):
    from chalicelib.usage import compare

    request = bp.current_request
    uid = user_id(request)
    params = request.query_params or {}
    # Both are checked before any read: a request that could never be answered costs no DynamoDB call.
    avatar_ids = compare.parse_avatar_ids(params.get("avatars"))
    days = compare.parse_days(params.get("days"))
    deps = get_deps()
    return json_response(compare.compare(uid, project_id, avatar_ids, days=days, storage=deps.storage,
                                         url_expiry=deps.settings.image_url_expiry_seconds))
