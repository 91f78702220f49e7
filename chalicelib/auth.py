"""JWT verification for the API authorizer (and token minting for the local stack).

HS256 only (pinned), `sub` and `exp` required, small leeway, optional issuer/audience.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass


ALGORITHMS = ["HS256"]
# User ids become part of DynamoDB keys and S3 prefixes: keep them to a safe alphabet, starting with a
# letter or digit (no "." or ".." path segments), matched whole (`$` would also accept a trailing newline).
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}")


def valid_user_id(value: object) -> bool:
    return isinstance(value, str) and _USER_ID.fullmatch(value) is not None


class InvalidTokenError(Exception):
    """The bearer token is missing, malformed, expired or wrongly signed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    user_id: str


def parse_bearer(header: str | None) -> str:
    if not header:
        raise InvalidTokenError("missing Authorization header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidTokenError("Authorization header is not 'Bearer <token>'")
    return token.strip()


def verify_token(token: str, *, secret: str, issuer: str | None = None, audience: str | None = None,
                 leeway_seconds: int = 30, max_lifetime_seconds: int | None = None) -> Principal:
    import jwt  # PyJWT: only the authorizer function pays for it at cold start

    required = ["exp", "sub"] + (["iss"] if issuer else []) + (["aud"] if audience else [])
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=ALGORITHMS,
            issuer=issuer,
            audience=audience,
            leeway=min(leeway_seconds, 60),
            options={"require": required, "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidTokenError("token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidTokenError("token not yet valid") from exc
    except jwt.InvalidTokenError as exc:  # signature, algorithm, audience, issuer, format, missing claims
        raise InvalidTokenError(f"invalid token: {type(exc).__name__}") from exc
    exp, iat = claims.get("exp"), claims.get("iat")
    # PyJWT accepts a numeric string for exp; a token with one was not made by a well-behaved issuer.
    if not _numeric(exp) or (iat is not None and not _numeric(iat)):
        raise InvalidTokenError("invalid token: exp and iat must be numbers")
    if max_lifetime_seconds is not None:
        issued = iat if iat is not None else time.time()
        if exp - issued > max_lifetime_seconds or exp - time.time() > max_lifetime_seconds:
            raise InvalidTokenError(f"token lives longer than {max_lifetime_seconds} s")
    sub = claims.get("sub")
    if not valid_user_id(sub):
        raise InvalidTokenError("invalid subject")
    return Principal(user_id=sub)


def _numeric(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def issue_token(user_id: str, *, secret: str, ttl_seconds: int = 86400, issuer: str | None = None,
                audience: str | None = None, now: int | None = None) -> str:
    if not valid_user_id(user_id):
        raise ValueError("user id must be 1-128 of [A-Za-z0-9_.@:-], starting with a letter or digit")
    iat = int(time.time()) if now is None else now
    claims = {"sub": user_id, "iat": iat, "exp": iat + ttl_seconds}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    import jwt

    return jwt.encode(claims, secret, algorithm="HS256")
