"""OpenAPI 3.1 description generated from the app's route table and the pydantic models
attached to each view with `@operation` — so an undocumented route cannot exist silently."""
from __future__ import annotations

import re
from typing import Any


from chalicelib.api.http import Operation, model

REF = "#/components/schemas/{model}"


def _error_response(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}}


_ERROR_TEXT = {400: "Invalid request", 401: "Missing or invalid bearer token", 404: "Not found",
               409: "Conflict", 413: "Body too large", 415: "Unsupported media type",
               429: "Quota exceeded (see Retry-After)", 503: "A dependency is unavailable"}


def build_spec(app: Any, *, title: str, version: str, server_url: str | None = None) -> dict:
    from pydantic.json_schema import models_json_schema

    from chalicelib.schemas import ErrorBody

    operations: list[tuple[str, str, Any, Operation]] = []
    models: set = {ErrorBody}
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            op: Operation | None = getattr(entry.view_function, "__openapi__", None)
            if op is None:
                raise ValueError(f"route {method} {path} has no @operation metadata")
            operations.append((path, method, entry, op))
            models.update(model(m) for m in (op.request, op.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    keys, schema = models_json_schema([(m, "validation" if m is not None else "serialization") for m in ordered],
                                      ref_template=REF)
    components = schema.get("$defs", {})

    def ref(model: Any, mode: str = "validation") -> dict:
        return keys[(model, "validation")]

    paths: dict[str, dict] = {}
    for path, method, entry, op in operations:
        item: dict[str, Any] = {"summary": op.summary, "tags": list(op.tags),
                                "operationId": entry.view_name, "responses": {}}
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
                  for name in re.findall(r"{(\w+)}", path)]
        if op.query is not None:
            qschema = model(op.query).model_json_schema()
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        for name, description in op.headers.items():
            params.append({"name": name, "in": "header", "required": False, "description": description,
                           "schema": {"type": "string", "maxLength": 200}})
        if params:
            item["parameters"] = params
        if op.request is not None:
            item["requestBody"] = {"required": True,
                                   "content": {"application/json": {"schema": ref(model(op.request))}}}
        ok: dict[str, Any] = {"description": "Success"}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": ref(model(op.response))}}
        item["responses"][str(op.status)] = ok
        for code in op.errors:
            item["responses"][str(code)] = _error_response(_ERROR_TEXT.get(code, "Error"))
        if not op.public:
            item["security"] = [{"bearerAuth": []}]
            item["responses"].setdefault("401", _error_response(_ERROR_TEXT[401]))
        paths.setdefault(path, {})[method.lower()] = item
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
    if server_url:
        spec["servers"] = [{"url": server_url}]
    return spec
