"""Secrets resolved once per container: from the environment locally, Secrets Manager on AWS."""
from __future__ import annotations

import functools

from chalicelib.config import Settings


@functools.lru_cache(maxsize=8)
def _from_secrets_manager(arn: str, endpoint_url: str | None, region: str) -> str:
    # The container's session and client (its endpoint and region are those of the settings, which
    # key this cache so that tests switching endpoints read again).
    from chalicelib.aws import session

    return session.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]


def jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    if settings.jwt_secret_arn:
        return _from_secrets_manager(settings.jwt_secret_arn, settings.aws_endpoint_url, settings.region)
    raise RuntimeError("JWT_SECRET or JWT_SECRET_ARN must be configured")


def hf_token(settings: Settings) -> str | None:
    if settings.hf_token:
        return settings.hf_token
    if settings.hf_token_arn:
        return _from_secrets_manager(settings.hf_token_arn, settings.aws_endpoint_url, settings.region)
    return None


def cursor_secret(settings: Settings) -> bytes:
    return (settings.cursor_secret or ("cursor:" + jwt_secret(settings))).encode()
