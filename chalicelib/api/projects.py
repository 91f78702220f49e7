"""/projects routes: parse, call the domain, answer."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import (Cursors, caller_id, json_response, my_role, no_content, operation, parse_body,
                                 parse_query, user_id)
from chalicelib.dependencies import get_deps

bp = Blueprint(__name__)
TAGS = ("projects",)


@bp.route("/projects", methods=["GET"], authorizer=jwt_auth)
@operation("List your projects, newest first (each with myRole: owner); shared=true: the projects shared with you, "
           "newest membership first, each with your role (myRole) and its owner (homeUserId)", tags=TAGS,
           query="ProjectListQuery", response="Page[Project]", role="user")
def list_projects():
    from chalicelib.projects import service as projects

    request = bp.current_request
    uid = caller_id(request)
    query = parse_query(request, "ProjectListQuery")
    if query.shared == "true":
        from chalicelib.teams import service as teams

        cursors = Cursors(uid, "projects:shared")
        shared, last_key = teams.shared_with_me(uid, limit=query.limit, start_key=cursors.decode(query.cursor))
        return json_response(cursors.page([{**projects.to_json(p), "myRole": m.role, "homeUserId": m.home}
                                           for m, p in shared], last_key))
    cursors = Cursors(uid, "projects")
    items, last_key = projects.list_projects(uid, limit=query.limit, start_key=cursors.decode(query.cursor))
    return json_response(cursors.page([{**projects.to_json(p), "myRole": "owner"} for p in items], last_key))


@bp.route("/projects", methods=["POST"], authorizer=jwt_auth, content_types=["application/json"])
@operation("Create a project", tags=TAGS, request="ProjectCreate", response="Project", status=201, errors=(400, 401, 413), role="user")
def create_project():
    from chalicelib.projects import service as projects

    request = bp.current_request
    uid = user_id(request)
    body = parse_body(request, "ProjectCreate")
    project = projects.create_project(get_deps().dynamodb, uid, body.name, body.description)
    return json_response(projects.to_json(project), status=201)


@bp.route("/projects/{project_id}", methods=["GET"], authorizer=jwt_auth)
@operation("Get a project with the first page of its avatars", tags=TAGS, response="ProjectDetail", role="viewer")
def get_project(project_id: str):
    from chalicelib.avatars import service as avatars
    from chalicelib.projects import service as projects

    uid = user_id(bp.current_request)
    deps = get_deps()
    project = projects.get_project(uid, project_id)
    limit = deps.settings.default_page_size
    items, last_key = avatars.list_avatars(uid, project_id, limit=limit, start_key=None)
    body = {**projects.to_json(project), "myRole": my_role(bp.current_request)}
    if uid != caller_id(bp.current_request):
        body["homeUserId"] = uid
    body["avatars"] = Cursors(uid, f"avatars:{project_id}").page(
        [avatars.to_json(a, deps.storage, deps.settings.image_url_expiry_seconds) for a in items], last_key)
    return json_response(body)


@bp.route("/projects/{project_id}", methods=["PUT"], authorizer=jwt_auth, content_types=["application/json"])
@operation("Rename or re-describe a project", tags=TAGS, request="ProjectUpdate", response="Project",
           errors=(400, 401, 404, 413), role="owner")
def update_project(project_id: str):
    from chalicelib.projects import service as projects

    request = bp.current_request
    uid = user_id(request)
    body = parse_body(request, "ProjectUpdate")
    # update() answers ALL_NEW, so the updated project needs no second read.
    project = projects.update_project(uid, project_id, name=body.name, description=body.description)
    return json_response(projects.to_json(project))


@bp.route("/projects/{project_id}", methods=["DELETE"], authorizer=jwt_auth)
@operation("Delete a project with its avatars, their history and files", tags=TAGS, status=204, role="owner")
def delete_project(project_id: str):
    from chalicelib.projects import service as projects

    uid = user_id(bp.current_request)
    deps = get_deps()
    projects.delete_project(deps.dynamodb, deps.sqs, deps.settings.cleanup_queue_url, uid, project_id)
    return no_content()
