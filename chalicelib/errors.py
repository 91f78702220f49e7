"""Domain errors and their one mapping to HTTP.

Domain modules raise these; the HTTP middleware turns them into
`{"error": {"code", "message", "details"}}` with the status below.
"""
from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
        if code:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationError(ServiceError):
    status = 400
    code = "validation_error"


class BadRequestError(ServiceError):
    status = 400
    code = "bad_request"


class UnauthorizedError(ServiceError):
    status = 401
    code = "unauthorized"


class ForbiddenError(ServiceError):
    """The caller may know the object exists (a member of its project) but their role does not allow this."""
    status = 403
    code = "forbidden"


class NotFoundError(ServiceError):
    status = 404
    code = "not_found"


class ConflictError(ServiceError):
    status = 409
    code = "conflict"


class PayloadTooLargeError(ServiceError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(ServiceError):
    status = 415
    code = "unsupported_media_type"


class QuotaExceededError(ServiceError):
    status = 429
    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details, headers={"Retry-After": str(int(retry_after))})
        self.retry_after = int(retry_after)


class DependencyError(ServiceError):
    """An AWS dependency (queue, storage, table) failed or is busy; the caller may retry, and is told
    when (Retry-After, seconds)."""
    status = 503
    code = "service_unavailable"
    RETRY_AFTER = 2

    def __init__(self, message: str, *, details: Any = None, code: str | None = None,
                 headers: dict[str, str] | None = None, retry_after: int | None = None) -> None:
        super().__init__(message, details=details, code=code,
                         headers={"Retry-After": str(int(retry_after or self.RETRY_AFTER)), **(headers or {})})


# DynamoDB's answers that mean "too much at once": the same request may succeed a moment later.
BUSY_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                        "TransactionConflictException", "TransactionInProgressException"})


def busy(exc: BaseException) -> bool:
    """True for throttling and write conflicts, whether PynamoDB wrapped them or botocore raised them, and
    for a transaction cancelled only by conflicts or throttling (chalicelib.aws.db.TransactionCancelled)."""
    if getattr(exc, "conflict", False) is True:
        return True
    code = getattr(exc, "cause_response_code", None)
    if code is None:
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    return code in BUSY_CODES


def validation_details(exc: Any) -> list[dict]:
    """pydantic's ValidationError → [{field, message, type}] for the error shape (no input echoed)."""
    return [{"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False)]
