"""Version history routes (issue 29): an avatar's versions, newest first, and restoring one."""
from __future__ import annotations

import re

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import Cursors, caller_id, json_response, operation, parse_query, user_id
from chalicelib.dependencies import get_deps
from chalicelib.errors import ValidationError

bp = Blueprint(__name__)
TAGS = ("avatars",)
# 1 … 99,999,999 (the key's eight digits), no sign, no leading zero: anything else is a 400, never a read.
_NUMBER = re.compile(r"[1-9][0-9]{0,7}")


def _number(version: str) -> int:
    if not _NUMBER.fullmatch(version or ""):
        raise ValidationError("A version is a whole number from 1 to 99999999", code="invalid_version",
                              details={"field": "version"})
    return int(version)


@bp.route("/avatars/{avatar_id}/versions", methods=["GET"], authorizer=jwt_auth)
@operation("An avatar's versions, newest first: each change of its name, persona, attributes or crop, with "
           "who, when, through which route, and each changed field before and after", tags=TAGS, query="ListQuery",
           response="Page[AvatarVersion]", role="viewer")
def list_versions(avatar_id: str):
    from chalicelib.avatars import versions

    request = bp.current_request
    uid = user_id(request)
    query = parse_query(request, "ListQuery")
    cursors = Cursors(uid, f"versions:{avatar_id}")
    items, last_key = versions.list_versions(uid, avatar_id, limit=query.limit, start_key=cursors.decode(query.cursor))
    return json_response(cursors.page([versions.version_json(v) for v in items], last_key))


@bp.route("/avatars/{avatar_id}/versions/{version}/restore", methods=["POST"], authorizer=jwt_auth)
@operation("Restore an avatar's fields to those of one of its versions, recorded as a new version; when it already "
           "is in that state nothing is written and `version` is null (a repeated click restores once)", tags=TAGS,
           response="VersionRestored", errors=(400, 401, 404, 409, 503), role="editor")
def restore_version(avatar_id: str, version: str):
    from chalicelib.avatars import crops, service, versions

    number = _number(version)
    uid = user_id(bp.current_request)
    deps = get_deps()
    avatar, recorded = versions.restore(uid, avatar_id, number, connection=deps.dynamodb,
                                        actor=caller_id(bp.current_request))
    made = versions.version_json(recorded) if recorded is not None else None
    if made is not None and "crop" in made["changes"]:
        crops.request_thumbnail(deps.sqs, deps.settings.upload_queue_url, uid, avatar_id)
    return json_response({"avatar": service.to_json(avatar, deps.storage, deps.settings.image_url_expiry_seconds),
                          "version": made})
