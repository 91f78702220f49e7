"""Export routes: start an export of an avatar or a project (202), read its status and download URL."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import caller_id, json_response, operation, user_id
from chalicelib.config import API_PREFIX
from chalicelib.dependencies import get_deps

bp = Blueprint(__name__)
TAGS = ("exports",)
EXPORT = "exports.schemas.Export"
ERRORS = (401, 404, 409, 429, 503)


def _started(scope: str, target_id: str):
    from chalicelib.exports import service as exports

    request = bp.current_request
    deps = get_deps()
    # The export is the caller's (their daily limit, their GET /exports/{id}); the avatars are read where
    # they live: the project's home partition when a member exports a shared project (issue 30).
    export = exports.start(deps.dynamodb, deps.sqs, deps.settings, caller_id(request), scope, target_id,
                           home=user_id(request))
    return json_response(exports.to_json(export, deps.storage, deps.settings), status=202,
                         headers={"Location": f"{API_PREFIX}/exports/{export.id}"})


@bp.route("/avatars/{avatar_id}/export", methods=["POST"], authorizer=jwt_auth)
@operation("Export an avatar as a zip (files, metadata, usage history, checksums); poll GET /exports/{id}",
           tags=TAGS, response=EXPORT, status=202, errors=ERRORS, role="viewer")
def export_avatar(avatar_id: str):
    return _started("avatar", avatar_id)


@bp.route("/projects/{project_id}/export", methods=["POST"], authorizer=jwt_auth)
@operation("Export a project's avatars as one zip; poll GET /exports/{id}", tags=TAGS, response=EXPORT,
           status=202, errors=ERRORS, role="viewer")
def export_project(project_id: str):
    return _started("project", project_id)


@bp.route("/exports/{export_id}", methods=["GET"], authorizer=jwt_auth)
@operation("An export's status and progress; when completed, a short-lived download URL signed now",
           tags=TAGS, response=EXPORT, errors=(401, 404), role="user")
def get_export(export_id: str):
    from chalicelib.exports import service as exports

    uid = user_id(bp.current_request)
    deps = get_deps()
    return json_response(exports.to_json(exports.get_export(uid, export_id), deps.storage, deps.settings))
