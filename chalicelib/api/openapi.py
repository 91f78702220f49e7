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


_ERROR_TEXT = {400: "Invalid request", 401: "Missing or invalid bearer token", 403: "Your role in the project does not allow this",
               404: "Not found",
               409: "Conflict", 413: "Body too large", 415: "Unsupported media type",
               429: "Quota exceeded (see Retry-After)", 503: "A dependency is unavailable or busy (see Retry-After)"}


_HTML_ERROR_TEXT = {404: "No such link (a page)", 410: "The link was revoked or expired (a page)",
                    429: "Too many views from this client (a page; see Retry-After)",
                    503: "Busy (a page; see Retry-After)"}


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
        if op.role is not None:
            item["x-min-role"] = op.role  # issue 30: the least role on the path's project that may call it
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
        for code in op.html_errors:
            item["responses"][str(code)] = {"description": _HTML_ERROR_TEXT.get(code, "Error"),
                                            "content": {"text/html": {"schema": {"type": "string"}}}}
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
    _drop_defaults_the_schema_refuses(spec)
    return spec


_JSON_TYPES: dict[str, tuple[type, ...]] = {"null": (type(None),), "boolean": (bool,), "string": (str,),
                                          "integer": (int,), "number": (int, float), "array": (list, tuple),
                                          "object": (dict,)}


def _admits(schema: Any, value: Any, components: dict) -> bool:
    """Whether `value` passes the type-level keywords of a JSON schema (type, const, enum, $ref,
    anyOf/oneOf/allOf). Other keywords (lengths, patterns…) are not checked: when unsure, admit."""
    if not isinstance(schema, dict):
        return True
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF.format(model="")):
        target = components.get(ref.rsplit("/", 1)[1])
        if target is not None and not _admits(target, value, components):
            return False
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        allowed = tuple(t for name in types for t in _JSON_TYPES.get(name, (object,)))
        if isinstance(value, bool) and bool not in allowed and object not in allowed:
            return False  # True is an int in Python, not a number in JSON
        if not isinstance(value, allowed):
            return False
    if "const" in schema and schema["const"] != value:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    for key in ("anyOf", "oneOf"):
        if key in schema and not any(_admits(branch, value, components) for branch in schema[key]):
            return False
    return all(_admits(part, value, components) for part in schema.get("allOf", ()))


def _drop_defaults_the_schema_refuses(spec: dict) -> None:
    """Remove every `default` that its own schema refuses.

    pydantic writes the Python default as is: an optional field that must not be null when sent
    (`AvatarUpdate.name: Name = None`) comes out as `{"type": "string", "default": null}`. Such a
    default tells a client nothing (leaving the field out is what it means) and makes the document
    invalid OpenAPI, so validators and client generators refuse it. Checking each default against its
    schema, rather than patching known fields, keeps a future model from bringing the problem back.
    (The Lambda has no JSON Schema validator, hence `_admits`; the full check is
    tests/functional/test_openapi_contract.py running openapi-spec-validator.)"""
    components = spec["components"]["schemas"]

    def schema(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                schema(item)
        if not isinstance(node, dict):
            return
        if "default" in node and not _admits({k: v for k, v in node.items() if k != "default"}, node["default"],
                                             components):
            del node["default"]
        for key, value in node.items():
            if key == "properties" or key == "$defs":  # maps of names to schemas
                for sub in value.values():
                    schema(sub)
            elif key not in ("default", "const", "enum", "examples", "example"):  # values, not schemas
                schema(value)

    for component in components.values():
        schema(component)
    # In the paths, only the parameters' and bodies' "schema" entries are schemas ("default" there
    # can be a response code).
    def operation(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema":
                    schema(value)
                else:
                    operation(value)
        elif isinstance(node, list):
            for item in node:
                operation(item)

    operation(spec["paths"])
