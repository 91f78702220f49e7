"""Share link routes (docs/sharing.md): make, list and revoke links to an avatar, and the public page
a link opens — the one route without the authorizer."""
from __future__ import annotations

import functools
from typing import Any, Callable

from chalice import Blueprint, Response

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import Cursors, json_response, no_content, operation, parse_body, parse_query, user_id
from chalicelib.config import API_PREFIX
from chalicelib.dependencies import get_deps

bp = Blueprint(__name__)
TAGS = ("shares",)
JSON = ["application/json"]
S = "sharing.schemas."


def link_path(token: str) -> str:
    return f"{API_PREFIX}/s/{token}"


@bp.route("/avatars/{avatar_id}/shares", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Make a share link to a ready avatar; the answer holds its token, the only time it is shown", tags=TAGS,
           request=S + "ShareCreate", response=S + "ShareCreated", status=201, errors=(400, 401, 404, 409, 413, 503), role="editor")
def create_share(avatar_id: str):
    from chalicelib.sharing import service as sharing

    request = bp.current_request
    uid = user_id(request)
    body = parse_body(request, S + "ShareCreate")
    share, token = sharing.create_share(get_deps().dynamodb, uid, avatar_id, expires_in=body.expiresIn,
                                        label=body.label, fields=body.fields)
    return json_response({**sharing.to_json(share), "token": token, "link": link_path(token)}, status=201)


@bp.route("/avatars/{avatar_id}/shares", methods=["GET"], authorizer=jwt_auth)
@operation("An avatar's share links, newest first (never their tokens)", tags=TAGS, query="ListQuery",
           response="Page[" + S + "Share]", role="editor")
def list_shares(avatar_id: str):
    from chalicelib.sharing import service as sharing

    request = bp.current_request
    uid = user_id(request)
    query = parse_query(request, "ListQuery")
    cursors = Cursors(uid, f"shares:{avatar_id}")
    items, last_key = sharing.list_shares(uid, avatar_id, limit=query.limit, start_key=cursors.decode(query.cursor))
    return json_response(cursors.page([sharing.to_json(s) for s in items], last_key))


@bp.route("/shares/{share_id}", methods=["DELETE"], authorizer=jwt_auth)
@operation("Revoke a share link (again: no change); its page answers 410 within minutes", tags=TAGS, status=204, role="editor")
def revoke_share(share_id: str):
    from chalicelib.sharing import service as sharing

    sharing.revoke_share(user_id(bp.current_request), share_id)
    return no_content()


def _html_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """Whatever answers the page route (a refused path, a busy table, a 500) is the page, with its headers."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        from chalicelib.sharing import page

        response = view(*args, **kwargs)
        if not response.headers.get("Content-Type", "").startswith("text/html"):
            extra = {k: v for k, v in response.headers.items() if k == "Retry-After"}
            lang = _language(bp.current_request)
            return Response(body=page.render_message(response.status_code, lang), status_code=response.status_code,
                            headers={**page.headers(lang=lang), **extra})
        return response

    return wrapper


def _language(request: Any) -> str:
    from chalicelib.sharing import page

    headers = getattr(request, "headers", None) or {}
    query = getattr(request, "query_params", None) or {}
    return page.language(headers.get("accept-language"), query.get("lang"))


def _client(request: Any) -> str:
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


@bp.route("/s/{token}", methods=["GET"])
@_html_errors
@operation("The public page of a share link (HTML, no token needed beyond the path): 404 unknown, 410 revoked or "
           "expired, 429 too many views from one client; in Bahasa Indonesia or English by Accept-Language (`?lang=id|en` overrides)", tags=TAGS, public=True, errors=(),
           html_errors=(404, 410, 429, 503), role="public")
def view_share(token: str):
    from chalicelib.errors import ServiceError
    from chalicelib.sharing import page, service as sharing

    lang = _language(bp.current_request)
    try:
        sharing.admit_view(_client(bp.current_request))
        share, avatar = sharing.resolve(token)
    except ServiceError as exc:
        if exc.status >= 500:
            raise
        return Response(body=page.render_message(exc.status, lang), status_code=exc.status,
                        headers={**page.headers(lang=lang), **exc.headers})
    view = sharing.public_view(share, avatar)
    url = get_deps().storage.presigned_get(view["imageKey"], sharing.IMAGE_URL_SECONDS)
    return Response(body=page.render_avatar(view, url, lang), status_code=200, headers=page.headers(url, lang))
