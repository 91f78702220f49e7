"""The real adapters, built in one place on first use and reused across warm invocations.

Nothing connects at import time. Tests call `reset()` after changing the environment.
"""
from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from pynamodb.connection import Connection  # already loaded by the models: free here

from chalicelib.config import Settings, get_settings
from chalicelib.aws.models import ALL_MODELS, bind_models

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.storage import Storage

# Reentrant: building a client builds the session first, both under this lock (botocore sessions
# are not thread-safe; the local server runs handlers on threads).
_lock = threading.RLock()


class SessionConnection(Connection):
    """PynamoDB's Connection on the container's botocore session. PynamoDB would build a session per
    connection and thread; this one uses `Dependencies.session` and builds its client under `_lock`."""

    def __init__(self, deps: "Dependencies", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._deps = deps

    @property
    def session(self) -> Any:
        return self._deps.session

    @property
    def client(self) -> Any:
        with _lock:
            return Connection.client.fget(self)


class Dependencies:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, Any] = {}
        self._session: Any = None
        # One DynamoDB client for every model and transaction (see models.SharedClient).
        bind_models(settings.table_name, settings.region, settings.aws_endpoint_url, client_source=self.dynamodb)

    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with _lock:
                client = self._clients.get(service)
                if client is None:
                    client = self._make_client(service)
                    self._clients[service] = client
        return client

    def _make_client(self, service: str) -> Any:
        # botocore, not boto3: boto3 adds ~40 ms of imports (s3transfer) to a cold start and nothing
        # these clients use. One session for all of them and the DynamoDB client (created under
        # _lock): each session scans the service index and parses the endpoint rules anew.
        from botocore.config import Config

        options: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3}}
        if service == "s3":
            # SigV4 everywhere: with a custom endpoint botocore otherwise presigns with SigV2.
            options["signature_version"] = "s3v4"
            if self.settings.aws_endpoint_url:
                options["s3"] = {"addressing_style": "path"}
        session = self.session
        if service not in session.get_available_services():
            # Slim data built before this service joined it (chalicelib.aws.botocore_data.SERVICES):
            # botocore's own catalogue, at the slim data's usual cost.
            from botocore.session import get_session

            session = get_session()
        return session.create_client(
            service,
            region_name=self.settings.region,
            endpoint_url=self.settings.aws_endpoint_url,
            config=Config(**options),
        )

    @property
    def session(self) -> Any:
        """The container's one botocore session: every client here is built on it, PynamoDB's too,
        so the service catalogue and endpoint data are loaded once — from the slim copy in
        chalicelib.aws.botocore_data when it matches this botocore."""
        if self._session is None:
            with _lock:
                if self._session is None:
                    from botocore.session import get_session

                    from chalicelib.aws.botocore_data import loader

                    session = get_session()
                    slim = loader()
                    if slim is not None:
                        session.register_component("data_loader", slim)
                    self._session = session
        return self._session

    @property
    def s3(self) -> Any:
        return self._client("s3")

    @property
    def sqs(self) -> Any:
        return self._client("sqs")

    @property
    def events(self) -> Any:
        return self._client("events")

    @functools.cached_property
    def event_bus(self) -> Any:
        from chalicelib.aws.event_bus import EventBus

        return EventBus(self.events, self.settings.event_bus_name)

    @functools.cached_property
    def storage(self) -> "Storage":
        from chalicelib.aws.presign import frozen
        from chalicelib.aws.storage import Storage

        # The session the S3 client will sign with: its credentials are the client's (refreshed by
        # botocore). The client itself is built on first use: a worker may skip its event before.
        credentials = self.session.get_credentials()
        return Storage(lambda: self.s3, self.settings.upload_bucket,
                       frozen(credentials) if credentials is not None else None)

    @functools.cached_property
    def provider(self) -> Any:
        """The image provider (FLUX or offline): one per container, so its HTTP connections are reused."""
        from chalicelib.providers import get_provider

        return get_provider(self.settings)

    @functools.cached_property
    def dynamodb(self) -> Connection:
        """The PynamoDB connection whose client every model uses (models.SharedClient); transactions
        (TransactWrite/TransactGet) take it directly."""
        # The pool serves the local server's threads too (Lambda uses one).
        return SessionConnection(self, region=self.settings.region, host=self.settings.aws_endpoint_url,
                                 max_pool_connections=32)


_deps: Dependencies | None = None


def get_deps() -> Dependencies:
    global _deps
    if _deps is None:
        with _lock:
            if _deps is None:
                _deps = Dependencies(get_settings())
    return _deps


def reset() -> None:
    """Forget settings and clients (tests switch endpoints/environments)."""
    global _deps
    get_settings.cache_clear()
    _deps = None
    for model in ALL_MODELS:  # their next use binds them again (models._Model._get_connection)
        model._connection = None
