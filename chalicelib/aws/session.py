"""The container's one botocore session and the clients built on it, made on first use and reused by
warm invocations. Nothing connects at import time; `reset()` forgets them (tests switch endpoints).

One session, because each botocore session loads the service catalogue and endpoint data anew (a
session and its first client: ~30 ms on the slim data, ~100 ms on botocore's full data); a further
client on the same session costs ~6 ms. botocore, not boto3: boto3 adds ~40 ms of imports
(s3transfer) to a cold start and nothing these clients use.
"""
from __future__ import annotations

import threading
from typing import Any

from pynamodb.connection import Connection

from chalicelib.config import get_settings

# Reentrant: building a client builds the session first, both under this lock (botocore sessions are
# not thread-safe; the local server runs handlers on threads).
_lock = threading.RLock()
_session: Any = None
_clients: dict[str, Any] = {}
_dynamodb: Connection | None = None
# The loader outlives `reset()`: what it caches (parsed service models) does not depend on the
# endpoint, and parsing them again costs ~0.1 s a reset (every functional test resets).
_loader: Any = None


def botocore_session() -> Any:
    """The one session, reading botocore's data from the slim copy (chalicelib.aws.botocore_data)
    when it was built for this botocore, else from botocore's own catalogue."""
    global _session, _loader
    if _session is None:
        with _lock:
            if _session is None:
                from botocore.session import get_session

                from chalicelib.aws.botocore_data import loader

                session = get_session()
                if _loader is None:
                    _loader = loader() or session.get_component("data_loader")
                session.register_component("data_loader", _loader)  # botocore's documented component
                _session = session
    return _session


def client(service: str) -> Any:
    """The botocore client of `service` (s3, sqs, events, secretsmanager) for the configured endpoint."""
    made = _clients.get(service)
    if made is None:
        with _lock:
            made = _clients.get(service)
            if made is None:
                made = _clients[service] = _make_client(service)
    return made


def _make_client(service: str) -> Any:
    from botocore.config import Config

    settings = get_settings()
    options: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3}}
    if service == "s3":
        # SigV4 everywhere: with a custom endpoint botocore otherwise presigns with SigV2.
        options["signature_version"] = "s3v4"
        if settings.aws_endpoint_url:
            options["s3"] = {"addressing_style": "path"}
    return botocore_session().create_client(service, region_name=settings.region,
                                            endpoint_url=settings.aws_endpoint_url, config=Config(**options))


class SessionConnection(Connection):
    """PynamoDB's Connection on the one session (PynamoDB would build a session per connection and
    thread), its client built under `_lock`. Both are public properties of Connection."""

    @property
    def session(self) -> Any:
        return botocore_session()

    @property
    def client(self) -> Any:
        with _lock:
            return Connection.client.fget(self)


def dynamodb() -> Connection:
    """The PynamoDB connection whose client every model (aws.models) and transaction (aws.db) uses."""
    global _dynamodb
    if _dynamodb is None:
        with _lock:
            if _dynamodb is None:
                settings = get_settings()
                # The pool serves the local server's threads too (Lambda uses one).
                _dynamodb = SessionConnection(region=settings.region, host=settings.aws_endpoint_url,
                                              max_pool_connections=32)
    return _dynamodb


def reset() -> None:
    global _session, _dynamodb
    with _lock:
        _session, _dynamodb = None, None
        _clients.clear()
