"""/presets and /persona-examples: the shared, read-only gallery users start avatars from."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.auth import jwt_auth
from chalicelib.api.generations import IDEMPOTENCY_HEADER, start_from
from chalicelib.api.http import Cursors, json_response, operation, parse_body, parse_query, user_id
from chalicelib.dependencies import get_deps

bp = Blueprint(__name__)
TAGS = ("presets",)


def _preset_json(preset) -> dict:
    from chalicelib.presets import service as presets

    deps = get_deps()
    return presets.preset_to_json(preset, deps.storage, deps.settings.image_url_expiry_seconds)


def _page(kind: str, lister, to_json):
    request = bp.current_request
    query = parse_query(request, "CategoryListQuery")
    cursors = Cursors(user_id(request), f"{kind}:{query.category or ''}")
    items, last_key = lister(category=query.category, limit=query.limit, start_key=cursors.decode(query.cursor))
    return json_response(cursors.page([to_json(item) for item in items], last_key))


@bp.route("/presets", methods=["GET"], authorizer=jwt_auth)
@operation("The preset gallery, by category, with preview thumbnails and popularity", tags=TAGS,
           query="CategoryListQuery", response="Page[Preset]", role="user")
def list_presets():
    from chalicelib.presets import service as presets

    return _page("presets", presets.list_presets, _preset_json)


@bp.route("/presets/{preset_id}", methods=["GET"], authorizer=jwt_auth)
@operation("One preset", tags=TAGS, response="Preset", role="user")
def get_preset(preset_id: str):
    from chalicelib.presets import service as presets

    user_id(bp.current_request)
    return json_response(_preset_json(presets.get_preset(preset_id)))


@bp.route("/persona-examples", methods=["GET"], authorizer=jwt_auth)
@operation("Persona examples to fill the persona form with, by category", tags=TAGS,
           query="CategoryListQuery", response="Page[PersonaExample]", role="user")
def list_persona_examples():
    from chalicelib.presets import service as presets

    return _page("personas", presets.list_persona_examples, presets.persona_example_to_json)


@bp.route("/persona-examples/{example_id}/use", methods=["POST"], authorizer=jwt_auth)
@operation("Count that a persona example was picked (its `uses`)", tags=TAGS, response="PersonaExample", role="user")
def use_persona_example(example_id: str):
    from chalicelib.presets import service as presets

    user_id(bp.current_request)
    return json_response(presets.persona_example_to_json(presets.use_persona_example(example_id)))


@bp.route("/presets/{preset_id}/generate", methods=["POST"], authorizer=jwt_auth, content_types=["application/json"])
@operation("Start a generation from a preset (name, persona and attributes may be overridden)", tags=TAGS,
           request="PresetGenerateRequest", response="Generation", status=202,
           errors=(400, 401, 404, 409, 413, 429, 503), headers=IDEMPOTENCY_HEADER, role="user")
def generate_from_preset(preset_id: str):
    from chalicelib.presets import service as presets

    request = bp.current_request
    body = parse_body(request, "PresetGenerateRequest")
    preset = presets.get_preset(preset_id)
    overrides = body.model_dump(exclude_none=True, exclude={"projectId"})
    fields = {**presets.generation_fields(preset), **overrides, "presetId": preset.id}
    started, payload = start_from(request, body.projectId, fields, source_type="preset")
    if started.created:  # a replayed request is not a second use
        presets.count_preset_use(preset)
    return json_response(payload, status=202 if started.created else 200)
