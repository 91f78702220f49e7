"""The API Gateway authorizer: verifies the bearer JWT once per token (cached by API Gateway)."""
from __future__ import annotations

from chalice import AuthResponse, Blueprint

from chalicelib.config import get_settings
from chalicelib.observability import logger
from chalicelib.aws.secrets import jwt_secret

auth_bp = Blueprint(__name__)

# Short cache: a revoked or expiring token must not outlive the JWT leeway by much.
AUTH_CACHE_SECONDS = 60


@auth_bp.authorizer(ttl_seconds=AUTH_CACHE_SECONDS)
def jwt_auth(auth_request):
    # Only the authorizer function verifies tokens: the other functions that import app.py skip PyJWT's module.
    from chalicelib.auth import InvalidTokenError, parse_bearer, verify_token

    settings = get_settings()
    try:
        principal = verify_token(parse_bearer(auth_request.token), secret=jwt_secret(settings),
                                 issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                                 leeway_seconds=settings.jwt_leeway_seconds,
                                 max_lifetime_seconds=settings.jwt_max_lifetime_seconds)
    except InvalidTokenError as exc:
        logger.info("token refused", extra={"reason": exc.reason})
        # A deny answers 401 with the error shape (API Gateway's ACCESS_DENIED response, see infra/).
        return AuthResponse(routes=[], principal_id="anonymous")
    return AuthResponse(routes=["*"], principal_id=principal.user_id)
