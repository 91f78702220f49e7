"""Attribute suggestions of an uploaded avatar (chalicelib.avatars.suggestions): accept or dismiss them."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import caller_id, json_response, operation, parse_body, user_id
from chalicelib.dependencies import get_deps
from chalicelib.errors import ValidationError

bp = Blueprint(__name__)
TAGS = ("avatars",)
JSON = ["application/json"]


def _avatar_json(avatar) -> dict:
    from chalicelib.avatars import service as avatars

    deps = get_deps()
    return avatars.to_json(avatar, deps.storage, deps.settings.image_url_expiry_seconds)


@bp.route("/avatars/{avatar_id}/suggestions/accept", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Accept attribute suggestions (all, or the named ones): each becomes the avatar's attribute "
           "unless the user already set that attribute", tags=TAGS, request="SuggestionAnswer", response="Avatar",
           errors=(400, 401, 404, 409, 413), role="editor")
def accept_suggestions(avatar_id: str):
    from chalicelib.avatars import suggestions

    request = bp.current_request
    uid = user_id(request)
    attributes = None
    if (request.raw_body or b"").strip():  # no body: accept them all
        attributes = parse_body(request, "SuggestionAnswer").attributes
    return json_response(_avatar_json(suggestions.accept(uid, avatar_id, attributes, connection=get_deps().dynamodb,
                                                            actor=caller_id(request))))


@bp.route("/avatars/{avatar_id}/suggestions", methods=["DELETE"], authorizer=jwt_auth)
@operation("Dismiss every attribute suggestion of an avatar (its attributes are unchanged)", tags=TAGS,
           response="Avatar", errors=(401, 404, 409), role="editor")
def dismiss_suggestions(avatar_id: str):
    from chalicelib.avatars import suggestions

    uid = user_id(bp.current_request)
    return json_response(_avatar_json(suggestions.dismiss(uid, avatar_id)))


@bp.route("/avatars/{avatar_id}/suggestions/{attribute}", methods=["DELETE"], authorizer=jwt_auth)
@operation("Dismiss one attribute suggestion of an avatar", tags=TAGS, response="Avatar", errors=(400, 401, 404, 409), role="editor")
def dismiss_suggestion(avatar_id: str, attribute: str):
    from chalicelib.avatars import suggestions

    if attribute not in suggestions.SUGGESTABLE:
        raise ValidationError("Unknown attribute", details={"attribute": attribute,
                                                            "allowed": list(suggestions.SUGGESTABLE)})
    uid = user_id(bp.current_request)
    return json_response(_avatar_json(suggestions.dismiss(uid, avatar_id, [attribute])))
