"""Team routes (issue 30): a project's members and roles, and who the caller is.

The project's data stays with its home user; these routes run for members through the same access
resolver as every other route (chalicelib.api.http, `role=`): a member's request runs as the home user.
"""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import caller_id, json_response, my_role, no_content, operation, parse_body, user_id
from chalicelib.dependencies import get_deps

bp = Blueprint(__name__)
TAGS = ("teams",)
JSON = ["application/json"]


def _project(project_id: str):
    """The project, read first: another user's id misses here, which is what lets a member in."""
    from chalicelib.projects import service as projects

    return projects.get_project(user_id(bp.current_request), project_id)


@bp.route("/me", methods=["GET"], authorizer=jwt_auth)
@operation("Who you are: your user id, the one an owner adds you to a project by", tags=TAGS, response="Me",
           errors=(401,), role="user")
def me():
    return json_response({"userId": caller_id(bp.current_request)})


@bp.route("/projects/{project_id}/members", methods=["GET"], authorizer=jwt_auth)
@operation("A project's members and their roles: its creator (home, an owner for good) first", tags=TAGS,
           response="MemberList", role="viewer")
def list_members(project_id: str):
    from chalicelib.teams import service as teams

    project = _project(project_id)
    return json_response({"items": teams.list_members(user_id(bp.current_request), project)})


@bp.route("/projects/{project_id}/members", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Add a member by their user id with a role (201; 200 when they already have that role)", tags=TAGS,
           request="MemberAdd", response="Member", status=201, errors=(400, 401, 404, 409, 413, 503), role="owner")
def add_member(project_id: str):
    from chalicelib.teams import service as teams

    request = bp.current_request
    body = parse_body(request, "MemberAdd")
    _project(project_id)
    deps = get_deps()
    member, created = teams.add_member(deps.dynamodb, deps.sqs, deps.settings.cleanup_queue_url,
                                       home=user_id(request), project_id=project_id, actor=caller_id(request),
                                       user_id=body.userId, role=body.role)
    return json_response(teams.member_json(member), status=201 if created else 200)


@bp.route("/projects/{project_id}/members/{member_id}", methods=["PUT"], authorizer=jwt_auth, content_types=JSON)
@operation("Change a member's role (the last owner stays one)", tags=TAGS, request="MemberUpdate",
           response="Member", errors=(400, 401, 404, 409, 413), role="owner")
def change_member(project_id: str, member_id: str):
    from chalicelib.teams import service as teams

    request = bp.current_request
    body = parse_body(request, "MemberUpdate")
    _project(project_id)
    member = teams.change_role(get_deps().dynamodb, home=user_id(request), project_id=project_id,
                               actor=caller_id(request), user_id=member_id, role=body.role)
    return json_response(teams.member_json(member))


@bp.route("/projects/{project_id}/members/{member_id}", methods=["DELETE"], authorizer=jwt_auth)
@operation("Remove a member (owners), or leave the project (your own user id, any role); effective on their "
           "next request", tags=TAGS, status=204, errors=(401, 404, 409), role="viewer")
def remove_member(project_id: str, member_id: str):
    from chalicelib.teams import service as teams

    request = bp.current_request
    _project(project_id)
    teams.remove_member(get_deps().dynamodb, home=user_id(request), project_id=project_id, actor=caller_id(request),
                        actor_role=my_role(request), user_id=member_id)
    return no_content()
