"""Unauthenticated service routes: health and the OpenAPI description."""
from __future__ import annotations

import functools

from chalice import Blueprint

from chalicelib.api.http import json_response, operation
from chalicelib.config import get_settings

bp = Blueprint(__name__)
VERSION = "0.1.0"


@bp.route("/health", methods=["GET"])
@operation("Liveness of the API function", tags=("system",), response="Health", public=True, errors=(), role="public")
def health():
    settings = get_settings()
    # The page says "generation is offline on this stack" from this, before anyone generates.
    return json_response({"status": "ok", "service": "avatar-creator", "stage": settings.stage,
                          "version": VERSION, "provider": "offline" if settings.offline_generation else "flux",
                          # The upload form offers the gender/age opt-in only where suggestions run (issue 30).
                          "attributeSuggestions": settings.attribute_suggestions_on})


@functools.lru_cache(maxsize=1)
def _spec() -> dict:
    from chalicelib.api.openapi import build_spec

    return build_spec(bp._current_app, title="Avatar Creator API", version=VERSION)


@bp.route("/openapi.json", methods=["GET"])
@operation("This OpenAPI description", tags=("system",), public=True, errors=(), role="public")
def openapi():
    return json_response(_spec())
