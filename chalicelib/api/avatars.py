"""Avatar routes: ask for uploads (presigned POSTs), list a project's avatars, read, edit, delete."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import Cursors, caller_id, json_response, no_content, operation, parse_body, parse_query, user_id
from chalicelib.dependencies import get_deps
from chalicelib.errors import NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.avatars import uploads

bp = Blueprint(__name__)
TAGS = ("avatars",)
JSON = ["application/json"]


def _avatar_json(avatar) -> dict:
    from chalicelib.avatars import service as avatars

    deps = get_deps()
    return avatars.to_json(avatar, deps.storage, deps.settings.image_url_expiry_seconds)


def _created(pending: uploads.PendingUpload) -> dict:
    ticket = pending.ticket
    return {"avatar": _avatar_json(pending.avatar),
            "upload": {"url": ticket.url, "fields": ticket.fields, "expiresAt": ticket.expires_at}}


def _request_uploads(project_id: str, files: list[dict]) -> list[uploads.PendingUpload]:
    from chalicelib.avatars import uploads

    uid = user_id(bp.current_request)
    deps = get_deps()
    return uploads.request_uploads(deps.dynamodb, deps.storage, deps.settings, uid, project_id, files)


@bp.route("/projects/{project_id}/avatars/upload", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Add an avatar from an image file: answers a presigned POST to send the file to", tags=TAGS,
           request="UploadRequest", response="UploadCreated", status=201, errors=(400, 401, 404, 413), role="editor")
def request_upload(project_id: str):
    body = parse_body(bp.current_request, "UploadRequest")
    [pending] = _request_uploads(project_id, [body.model_dump()])
    return json_response(_created(pending), status=201)


@bp.route("/projects/{project_id}/avatars/uploads", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Add up to 20 avatars from image files in one call (all or none)", tags=TAGS,
           request="UploadBatchRequest", response="UploadBatchCreated", status=201, errors=(400, 401, 404, 413), role="editor")
def request_uploads(project_id: str):
    body = parse_body(bp.current_request, "UploadBatchRequest")
    pending = _request_uploads(project_id, [spec.model_dump() for spec in body.files])
    return json_response({"items": [_created(p) for p in pending]}, status=201)


@bp.route("/projects/{project_id}/avatars", methods=["GET"], authorizer=jwt_auth)
@operation("List a project's avatars, newest first, with filters and name search", tags=TAGS,
           query="AvatarListQuery", response="Page[Avatar]", role="viewer")
def list_avatars(project_id: str):
    from chalicelib.avatars import service as avatars
    from chalicelib.projects import service as projects

    request = bp.current_request
    uid = user_id(request)
    query = parse_query(request, "AvatarListQuery")
    # A GetItem first: another user's (or a deleted) project is 404, not an empty list.
    projects.get_project(uid, project_id)
    # Same scope as the first page embedded in GET /projects/{id}, so its cursor continues here.
    cursors = Cursors(uid, f"avatars:{project_id}")
    visual = tuple((k, getattr(query, k)) for k in avatars.FILTERABLE_VISUAL if getattr(query, k, None))
    filters = avatars.AvatarFilters(source_type=query.sourceType, gender=query.gender, style=query.style,
                                    search=query.q or None, status=query.status, attributes=visual)
    items, last_key = avatars.list_avatars(uid, project_id, limit=query.limit, filters=filters,
                                           start_key=cursors.decode(query.cursor))
    return json_response(cursors.page([_avatar_json(a) for a in items], last_key))


@bp.route("/avatars/{avatar_id}", methods=["GET"], authorizer=jwt_auth)
@operation("Get an avatar (imageUrl/thumbnailUrl are short-lived presigned GET URLs) with its lineage: the "
           "avatar it was made from and the newest avatars made from it", tags=TAGS, response="AvatarDetail", role="viewer")
def get_avatar(avatar_id: str):
    from chalicelib.avatars import service as avatars

    uid = user_id(bp.current_request)
    avatar = avatars.get_avatar(uid, avatar_id)
    return json_response({**_avatar_json(avatar), **_lineage_json(avatar)})


def _lineage_json(avatar) -> dict:
    """`source` (one GetItem, only when it has one) and `derivatives` (one Query on GSI2)."""
    from chalicelib.avatars import versions

    deps = get_deps()
    expiry = deps.settings.image_url_expiry_seconds

    def summary(other) -> dict:
        return {"id": other.id, "name": other.name, "status": other.status, "sourceType": other.source_type,
                "createdAt": other.created_at,
                "thumbnailUrl": deps.storage.presigned_get(other.thumbnail_key, expiry)
                if other.status == "ready" and other.thumbnail_key else None}

    source = None
    if avatar.source_avatar_id:
        found = versions.source_of(avatar)
        source = {"id": avatar.source_avatar_id, "kind": versions.lineage_kind(avatar), "exists": found is not None,
                  **({k: v for k, v in summary(found).items() if k != "id"} if found is not None else {})}
    items, more = versions.derivatives(avatar)
    return {"source": source, "derivatives": {
        "items": [{**summary(d), "kind": versions.lineage_kind(d)} for d in items], "hasMore": more}}


@bp.route("/avatars/{avatar_id}", methods=["PUT"], authorizer=jwt_auth, content_types=JSON)
@operation("Edit an avatar's name, persona, attributes and thumbnail crop (null clears a field)", tags=TAGS,
           request="AvatarUpdate", response="Avatar", errors=(400, 401, 404, 409, 413, 503), role="editor")
def update_avatar(avatar_id: str):
    from chalicelib.avatars import crops, versions

    request = bp.current_request
    uid = user_id(request)
    body = parse_body(request, "AvatarUpdate")
    changes = body.model_dump(include=body.model_fields_set)
    deps = get_deps()
    avatar, _ = versions.edit_avatar(uid, avatar_id, changes, connection=deps.dynamodb,  # a change is a version
                                     actor=caller_id(request))
    if "crop" in changes:
        crops.request_thumbnail(deps.sqs, deps.settings.upload_queue_url, uid, avatar_id)
    return json_response(_avatar_json(avatar))


@bp.route("/avatars/{avatar_id}", methods=["DELETE"], authorizer=jwt_auth)
@operation("Delete an avatar with its files and usage history", tags=TAGS, status=204, role="editor")
def delete_avatar(avatar_id: str):
    from chalicelib.avatars import service as avatars

    uid = user_id(bp.current_request)
    deps = get_deps()
    avatar = avatars.get_avatar(uid, avatar_id, consistent=True)
    if not avatars.delete_avatar(deps.dynamodb, deps.storage, avatar):
        raise NotFoundError("Avatar not found", details={"avatarId": avatar_id})
    return no_content()
