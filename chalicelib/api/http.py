"""HTTP plumbing shared by the blueprints: body parsing, the caller's identity, JSON answers,
error mapping, and the per-operation metadata that /openapi.json is generated from."""
from __future__ import annotations

import contextvars
import functools
import json
from typing import Any, Callable, TypeVar, Union

from chalice import Response
from chalice.app import Request

from chalicelib.config import get_settings
from chalicelib.cursors import decode_cursor, encode_cursor
from chalicelib.errors import (
    DependencyError,
    PayloadTooLargeError,
    ServiceError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    ValidationError,
    busy,
    validation_details,
)
from chalicelib.observability import logger
from chalicelib.aws.secrets import cursor_secret

M = TypeVar("M")
# Schemas are named, not imported: pydantic and the models are built on the first request that
# needs them, not at cold start (workers never pay for them at all).
ModelRef = Union[str, type]


def model(ref: ModelRef) -> Any:
    """A chalicelib.schemas model from its name ("Project", "Page[Avatar]"), a model of another schema
    module of chalicelib ("events.webhook_schemas.Webhook"), or the class itself."""
    if not isinstance(ref, str):
        return ref
    from chalicelib import schemas

    if ref.startswith("Page[") and ref.endswith("]"):
        return schemas.Page[model(ref[5:-1])]
    if "." in ref:
        import importlib

        module, name = ref.rsplit(".", 1)
        return getattr(importlib.import_module(f"chalicelib.{module}"), name)
    return getattr(schemas, ref)

JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if hasattr(body, "model_dump_json"):  # a pydantic model
        payload = body.model_dump_json()
    else:
        payload = json.dumps(body, separators=(",", ":"))
    return Response(body=payload, status_code=status, headers={**JSON_HEADERS, **(headers or {})})


class Cursors:
    """Opaque page cursors of one list, bound to the caller and the list (scope): a cursor of
    another user or another list is refused (400), never followed."""
    __slots__ = ("user", "scope")

    def __init__(self, user: str, scope: str) -> None:
        # A member reads the home user's list under the home's id, but the cursor is theirs: bound to the
        # caller, it also decodes on the next request's first (own-id) try.
        access = _ACCESS.get()
        self.user = access.caller if access is not None and user == access.home else user
        self.scope = scope

    def decode(self, cursor: str | None) -> dict | None:
        return decode_cursor(cursor, secret=cursor_secret(get_settings()), user_id=self.user, scope=self.scope)

    def encode(self, last_key: dict | None) -> str | None:
        return encode_cursor(last_key, secret=cursor_secret(get_settings()), user_id=self.user, scope=self.scope)

    def page(self, items: list, last_key: dict | None) -> dict:
        return {"items": items, "nextCursor": self.encode(last_key)}


def no_content() -> Response:
    return Response(body="", status_code=204, headers={})


def error_response(error: ServiceError) -> Response:
    return json_response(error.body(), status=error.status, headers=error.headers)


# Team access (issue 30): while a route runs again for a member of a shared project, the data's owner
# (the project's home user) and the member's role. Per request: Chalice runs each request in one
# thread (Lambda: one at a time), and the wrapper resets it when the view returns.
_ACCESS: contextvars.ContextVar = contextvars.ContextVar("team_access", default=None)
_PRINCIPAL: contextvars.ContextVar = contextvars.ContextVar("principal", default=None)


def caller_id(request: Request) -> str:
    """The authenticated caller, as set by the authorizer: who pays (quota, active jobs), whose
    webhooks, stats, cursors, rate windows."""
    authorizer = (request.context or {}).get("authorizer") or {}
    principal = authorizer.get("principalId")
    if not principal:
        raise UnauthorizedError("Missing or invalid bearer token")
    _PRINCIPAL.set(principal)
    return principal


def user_id(request: Request) -> str:
    """Whose partition the route reads and writes: the caller's own, or — when the route runs for a
    member of a shared project — the project's home user. Every data access is scoped by it."""
    principal = caller_id(request)
    access = _ACCESS.get()
    if access is not None and access.caller == principal:
        return access.home
    return principal


def my_role(request: Request) -> str:
    """The caller's role on the route's project: `owner` on their own, their membership's otherwise."""
    caller_id(request)
    access = _ACCESS.get()
    return access.role if access is not None else "owner"


def for_member(request: Request) -> bool:
    """True while the route runs for a member on someone else's project (its second run)."""
    return _ACCESS.get() is not None


def parse_body(request: Request, ref: ModelRef) -> Any:
    raw = request.raw_body or b""
    limit = get_settings().max_body_bytes
    if len(raw) > limit:
        raise PayloadTooLargeError(f"Request body is larger than {limit} bytes", details={"limit": limit})
    content_type = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaTypeError("Send the request body as application/json")
    if not raw.strip():
        raise ValidationError("A JSON body is required", code="bad_json")
    from pydantic import ValidationError as PydanticValidationError

    try:
        return model(ref).model_validate_json(raw)
    except PydanticValidationError as exc:
        details = validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            raise ValidationError("The request body is not valid JSON", code="bad_json") from exc
        raise ValidationError("The request body is invalid", details=details) from exc


def parse_query(request: Request, ref: ModelRef) -> Any:
    params = dict(request.query_params or {})
    if isinstance(ref, str):
        from chalicelib.querystrings import parse_plain

        # A cold GET with a plainly valid query never builds pydantic (see chalicelib.querystrings).
        plain = parse_plain(ref, params)
        if plain is not None:
            return plain
    from pydantic import ValidationError as PydanticValidationError

    try:
        # Query strings are text: validate in lax mode so "20" becomes 20, unknown keys are ignored (as cache-busters and tracking params should be).
        return model(ref).model_validate(params, strict=False)
    except PydanticValidationError as exc:
        raise ValidationError("Invalid query parameters", details=validation_details(exc)) from exc


def http_error_middleware(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Tags every log line of a request with its API Gateway request id, and gives the errors Chalice
    answers itself before a view runs (a route's content types: 415) the service's error shape."""
    context = getattr(event, "context", None) or {}
    logger.set_correlation_id(context.get("requestId"))
    response = get_response(event)
    if response.status_code == 415 and isinstance(response.body, dict) and "Code" in response.body:
        error = error_response(UnsupportedMediaTypeError("Send the request body as application/json",
                                                         details={"contentType": "application/json"}))
        error.headers = {**response.headers, **error.headers}
        return error
    return response


def _answer_errors(view: Callable[..., Response], role: str | None = None) -> Callable[..., Response]:
    """Domain errors become their HTTP answer; anything unexpected becomes a logged 500 in the same shape.

    Chalice turns exceptions from views into its own 500 body before middleware sees them,
    so the mapping has to sit on the view itself.
    """
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            _check_path_ids(kwargs)
            return _as_owner_or_member(view, role, args, kwargs)
        except ServiceError as exc:
            if exc.status >= 500:
                logger.warning("dependency failure", extra={"error": exc.code, "reason": exc.message})
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001 — the last line of defence: never leak a traceback to a client
            if busy(exc):
                # Throttled, or a write that met a concurrent one: nothing was written (a transaction
                # is all or nothing), and the same request may pass a moment later.
                logger.warning("busy", extra={"error": type(exc).__name__, "reason": str(exc)[:200]})
                return error_response(DependencyError("The service is busy; try again in a moment", code="busy"))
            if _refused_as_input(exc):
                # DynamoDB refused a value the request carried (our validation should have): the
                # client's input, not a dependency failure.
                logger.warning("input refused by DynamoDB", extra={"error": str(exc)[:200]})
                return error_response(ValidationError("The request holds a value that cannot be stored",
                                                      code="unstorable_input"))
            logger.exception("unhandled error")
            return error_response(ServiceError("Internal server error"))

    return wrapper


def _as_owner_or_member(view: Callable[..., Response], role: str | None, args: tuple, kwargs: dict) -> Response:
    """Run the view with the caller's own id (an owner's path, unchanged); when its object is not there
    and the route is a team route, resolve the caller's membership and run it again as the home user.
    Views look their object up before they write anything, so the first run's miss changed nothing."""
    from chalicelib.errors import NotFoundError

    principal = _PRINCIPAL.set(None)
    try:
        try:
            return view(*args, **kwargs)
        except NotFoundError:
            caller = _PRINCIPAL.get()
            if role not in TEAM_ROLES or caller is None:
                raise
            from chalicelib.teams import access as team_access

            shared = team_access.target(kwargs)
            access = team_access.resolve(*shared, caller, role) if shared else None
            if access is None:
                raise
        token = _ACCESS.set(access)
        try:
            return view(*args, **kwargs)
        finally:
            _ACCESS.reset(token)
    finally:
        _PRINCIPAL.reset(principal)


# Path parameters that are ids: anything that is not one is simply not found, like another user's id
# (and never reaches DynamoDB, which refuses keys over 2 KB with a ValidationException).
_ID_PREFIXES = {"project_id": ("prj", "Project"), "avatar_id": ("ava", "Avatar"),
                "generation_id": ("gen", "Generation"), "share_id": ("shr", "Share"),
                "export_id": ("exp", "Export")}
_PATH_VALUE_MAX = 128


def _check_path_ids(params: dict) -> None:
    from chalicelib import ids
    from chalicelib.errors import NotFoundError

    for name, value in params.items():
        known = _ID_PREFIXES.get(name)
        if known is not None and ids.is_valid_id(value, known[0]):
            continue
        if known is not None or not isinstance(value, str) or len(value) > _PATH_VALUE_MAX:
            label = known[1] if known else name.replace("_id", "").replace("_", " ").capitalize()
            raise NotFoundError(f"{label} not found", details={name.replace("_id", "Id"): str(value)[:_PATH_VALUE_MAX]})


def _refused_as_input(exc: Exception) -> bool:
    code = getattr(exc, "cause_response_code", None)
    return code == "ValidationException"


# ---- operation metadata for /openapi.json --------------------------------------------------

# A route's minimum role on the project its path names (issue 30). Team roles rank viewer < editor <
# owner and let members of a shared project in; "user" routes serve the caller's own data only
# (webhooks, stats, presets, an export or share by its id); "public" routes need no sign-in.
TEAM_ROLES = ("viewer", "editor", "owner")
ROLES = TEAM_ROLES + ("user", "public")


class Operation:
    """A route's OpenAPI metadata. (Plain classes here and in Cursors: each generated dataclass costs
    every cold start about a millisecond.)"""
    __slots__ = ("summary", "tags", "request", "query", "response", "status", "errors", "public", "headers",
                 "html_errors", "role")

    def __init__(self, summary: str, tags: tuple[str, ...] = (), request: ModelRef | None = None,
                 query: ModelRef | None = None, response: ModelRef | None = None, status: int = 200,
                 errors: tuple[int, ...] = (400, 401, 404), public: bool = False,
                 headers: dict[str, str] | None = None, html_errors: tuple[int, ...] = (),
                 role: str | None = None) -> None:
        self.summary, self.tags, self.request, self.query, self.response = summary, tags, request, query, response
        self.status, self.errors, self.public, self.headers = status, errors, public, headers or {}
        self.html_errors = html_errors  # answered as an HTML page (a page for browsers), not the JSON error shape
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role!r}: one of {ROLES}")
        if role in TEAM_ROLES and 403 not in self.errors:
            self.errors = (*self.errors, 403)
        self.role = role


def operation(summary: str, **kwargs: Any) -> Callable[[Callable], Callable]:
    """Attach OpenAPI metadata and the error mapping to a view; place it *below* the route decorator."""
    op = Operation(summary=summary, **kwargs)

    def decorate(func: Callable) -> Callable:
        wrapped = _answer_errors(func, op.role)
        wrapped.__openapi__ = op  # type: ignore[attr-defined]
        return wrapped

    return decorate
