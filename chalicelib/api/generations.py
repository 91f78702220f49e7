"""Generation routes: start a job, follow it, list a project's jobs, cancel, retry."""
from __future__ import annotations

import re

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.http import Cursors, caller_id, json_response, operation, parse_body, parse_query, user_id
from chalicelib.dependencies import get_deps
from chalicelib.errors import ConflictError, ValidationError

bp = Blueprint(__name__)
TAGS = ("generation",)
JSON = ["application/json"]
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
IDEMPOTENCY_HEADER = {"Idempotency-Key": "Optional. The same key and body return the same generation (24 h)."}


def idempotency_key(request) -> str | None:
    key = (request.headers or {}).get("idempotency-key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise ValidationError("Idempotency-Key must be 1-128 of A-Z a-z 0-9 . _ : -",
                              details={"header": "Idempotency-Key"})
    return key


def generation_json(uid: str, gen, *, position: bool = False) -> dict:
    from chalicelib.generation import render

    deps = get_deps()
    made = render.avatars_json(uid, gen, deps.storage, deps.settings.image_url_expiry_seconds)
    return render.to_json(gen, made[0] if made else None, avatars_json=made,
                          queue_position=render.queue_position(deps.sqs, deps.settings, gen) if position else None)


def language(request) -> str:
    """"en" or "id", from Accept-Language: the language of content-policy refusals."""
    from chalicelib.generation import content_policy

    return content_policy.language_of((request.headers or {}).get("accept-language"))


def start_from(request, project_id: str, fields: dict, *, source_type: str = "text_to_image",
               key_suffix: str = ""):
    """Shared by /avatars/generate, presets and variations: starts one generation and returns
    (Started, its JSON). A replayed Idempotency-Key returns the earlier generation."""
    from chalicelib.generation import requests as generation

    uid = user_id(request)
    deps = get_deps()
    key = idempotency_key(request)
    started = generation.start(deps.dynamodb, deps.sqs, deps.settings, uid, project_id, fields,
                               idempotency_key=f"{key}{key_suffix}" if key else None, source_type=source_type,
                               language=language(request), payer=caller_id(request))
    return started, generation_json(uid, started.generation)


@bp.route("/projects/{project_id}/avatars/generate", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Start generating an avatar from a prompt, persona and attributes (FLUX.1-dev + realism LoRA)",
           tags=TAGS, request="GenerateRequest", response="Generation", status=202, errors=(400, 401, 404, 409, 413, 429, 503),
           headers=IDEMPOTENCY_HEADER, role="editor")
def generate(project_id: str):
    request = bp.current_request
    body = parse_body(request, "GenerateRequest")
    started, payload = start_from(request, project_id, body.model_dump(exclude_none=True))
    return json_response(payload, status=202 if started.created else 200)


@bp.route("/generations/{generation_id}", methods=["GET"], authorizer=jwt_auth)
@operation("A generation's status, progress, attempts, error and (once completed) its avatar", tags=TAGS,
           response="Generation", role="viewer")
def get_generation(generation_id: str):
    from chalicelib.generation import requests as generation

    uid = user_id(bp.current_request)
    return json_response(generation_json(uid, generation.get(uid, generation_id), position=True))


@bp.route("/projects/{project_id}/generations", methods=["GET"], authorizer=jwt_auth)
@operation("A project's generations, newest first; status=active for the pending and processing ones", tags=TAGS,
           query="GenerationListQuery", response="Page[Generation]", role="viewer")
def list_generations(project_id: str):
    from chalicelib.projects import service as projects
    from chalicelib.generation import render, requests as generation

    request = bp.current_request
    uid = user_id(request)
    query = parse_query(request, "GenerationListQuery")
    projects.get_project(uid, project_id)  # another user's project is 404, not an empty list
    cursors = Cursors(uid, f"generations:{project_id}:{query.status}")
    items, last_key = generation.list_for_project(uid, project_id, active_only=query.status == "active",
                                                  limit=query.limit, start_key=cursors.decode(query.cursor))
    # The list shows status, not the avatar: no extra reads per item.
    return json_response(cursors.page([render.to_json(g) for g in items], last_key))


@bp.route("/generations/{generation_id}/cancel", methods=["POST"], authorizer=jwt_auth)
@operation("Cancel a pending generation", tags=TAGS, response="Generation", errors=(401, 404, 409), role="editor")
def cancel_generation(generation_id: str):
    from chalicelib.generation import requests as generation

    uid = user_id(bp.current_request)
    return json_response(generation_json(uid, generation.cancel(get_deps().dynamodb, uid, generation_id)))


@bp.route("/generations/{generation_id}/retry", methods=["POST"], authorizer=jwt_auth)
@operation("Run a failed generation again", tags=TAGS, response="Generation", status=202,
           errors=(401, 404, 409, 429, 503), role="editor")
def retry_generation(generation_id: str):
    from chalicelib.generation import requests as generation

    uid = user_id(bp.current_request)
    deps = get_deps()
    gen = generation.retry(deps.dynamodb, deps.sqs, deps.settings, uid, generation_id,
                           payer=caller_id(bp.current_request))
    return json_response(generation_json(uid, gen), status=202)


@bp.route("/avatars/{avatar_id}/variations", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Generate variations of an avatar: same persona and attributes, a new seed (and style) each",
           tags=TAGS, request="VariationsRequest", response="GenerationList", status=202,
           errors=(400, 401, 404, 409, 413, 429, 503), headers=IDEMPOTENCY_HEADER, role="editor")
def variations(avatar_id: str):
    from chalicelib.avatars import service as avatars
    from chalicelib.generation.requests import JobRequest, start_many

    request = bp.current_request
    uid = user_id(request)
    body = parse_body(request, "VariationsRequest")
    avatar = avatars.get_avatar(uid, avatar_id)
    if avatar.status != "ready":
        raise ConflictError("Only a ready avatar can have variations", code="invalid_state",
                            details={"status": avatar.status})
    base = {**avatars.persona_fields(avatar), **avatars.attribute_fields(avatar)}
    base = {k: v for k, v in base.items() if v not in (None, [], "")}
    jobs = []
    for i in range(body.count):
        fields = {**base, "name": f"{avatar.name} · variation {i + 1}"[:100],
                  "prompt": body.prompt or "portrait photo of the same person",
                  "variationOf": avatar.id, "width": avatar.width if _side_ok(avatar.width) else 768,
                  "height": avatar.height if _side_ok(avatar.height) else 1024, "numImages": body.numImages}
        if body.styles:
            fields["style"] = body.styles[i % len(body.styles)]
        jobs.append(fields)
    key = idempotency_key(request)
    deps = get_deps()
    # All or nothing: the policy on every job, then one transaction for every job and its quota.
    started = start_many(deps.dynamodb, deps.sqs, deps.settings, uid, avatar.project_id,
                         [JobRequest(fields, idempotency_key=f"{key}:{i}" if key else None)
                          for i, fields in enumerate(jobs)], language=language(request),
                         payer=caller_id(request))
    items = [generation_json(uid, s.generation) for s in started]
    return json_response({"items": items}, status=202)


@bp.route("/avatars/{avatar_id}/restyle", methods=["POST"], authorizer=jwt_auth, content_types=JSON)
@operation("Restyle an avatar: a new avatar from its image and a prompt (image-to-image), keeping its persona "
           "and attributes", tags=TAGS, request="RestyleRequest", response="Generation", status=202,
           errors=(400, 401, 404, 409, 413, 429, 503), headers=IDEMPOTENCY_HEADER, role="editor")
def restyle(avatar_id: str):
    from chalicelib.avatars import service as avatars

    request = bp.current_request
    uid = user_id(request)
    body = parse_body(request, "RestyleRequest")
    avatar = avatars.get_avatar(uid, avatar_id)  # another user's avatar is 404
    if avatar.status != "ready" or not avatar.image_key:
        raise ConflictError("Only a ready avatar can be restyled", code="invalid_state",
                            details={"status": avatar.status})
    base = {**avatars.persona_fields(avatar), **avatars.attribute_fields(avatar)}
    fields = {k: v for k, v in base.items() if v not in (None, [], "")}
    fields.update({"name": f"{avatar.name} · restyled"[:100], "prompt": body.prompt, "strength": body.strength,
                   "numImages": body.numImages, "sourceAvatarId": avatar.id,
                   "width": avatar.width if _side_ok(avatar.width) else 768,
                   "height": avatar.height if _side_ok(avatar.height) else 1024})
    if body.style:
        fields["style"] = body.style
    if body.seed is not None:
        fields["seed"] = body.seed
    started, payload = start_from(request, avatar.project_id, fields, source_type="image_to_image")
    return json_response(payload, status=202 if started.created else 200)


def _side_ok(value) -> bool:
    return value is not None and 256 <= int(value) <= 1536 and int(value) % 16 == 0
