"""API Gateway's own answers, rewritten to the service's error shape the way infra's
GatewayResponses do on AWS. Shared by the local server and the functional tests' client.

- missing Authorization header (UNAUTHORIZED) and a denying authorizer (ACCESS_DENIED)
  → 401 {"error": {"code": "unauthorized", ...}}
- no such route (MISSING_AUTHENTICATION_TOKEN, also for a known path with an unknown method)
  → 404 {"error": {"code": "not_found", ...}}
- a broken authorizer (AUTHORIZER_CONFIGURATION_ERROR) → 500 internal_error
"""
from __future__ import annotations

import json
from typing import Any

from chalice.local import ForbiddenError, InvalidAuthorizerError, LocalGatewayException, NotAuthorizedError

# GatewayResponses carry CORS headers too, so a browser can read the error.
BASE_HEADERS = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}


def error_body(code: str, message: str, details: Any = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message,
                                 "details": details if details is not None else {}}},
                      separators=(",", ":")).encode()


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {**BASE_HEADERS, **(headers or {})}, error_body(code, message, details)


def unauthorized(headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return error_response(401, "unauthorized", "Missing or invalid bearer token", headers=headers)


def not_found(headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return error_response(404, "not_found", "No such route", headers=headers)


def _is_missing_route(exc: ForbiddenError) -> bool:
    body = exc.body or b""
    if isinstance(body, str):
        body = body.encode()
    return b"Missing Authentication Token" in body or b"Authorization header requires" in body


def gateway_error_response(exc: LocalGatewayException) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for an exception raised by chalice.local.LocalGateway."""
    request_id = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "x-amzn-requestid"}
    if isinstance(exc, NotAuthorizedError):
        return unauthorized({**request_id, "x-amzn-ErrorType": "UnauthorizedException"})
    if isinstance(exc, ForbiddenError):
        if _is_missing_route(exc):
            return not_found({**request_id, "x-amzn-ErrorType": "MissingAuthenticationTokenException"})
        return unauthorized({**request_id, "x-amzn-ErrorType": "AccessDeniedException"})
    if isinstance(exc, InvalidAuthorizerError):
        return error_response(500, "internal_error", "Internal server error",
                              headers={**request_id, "x-amzn-ErrorType": "AuthorizerConfigurationException"})
    return error_response(getattr(exc, "CODE", 500) or 500, "internal_error", "Internal server error",
                          headers=request_id)


def is_method_miss(response: dict[str, Any]) -> bool:
    """Chalice answers 405 for a known path with an unknown method; API Gateway never reaches the
    function and answers MISSING_AUTHENTICATION_TOKEN instead (→ 404 not_found)."""
    if response.get("statusCode") != 405:
        return False
    body = response.get("body") or ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body).get("Code") == "MethodNotAllowedError"
    except (ValueError, AttributeError):
        return False
