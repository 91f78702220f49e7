"""The real adapters, built in one place on first use and reused across warm invocations.

Nothing connects at import time. Tests call `reset()` after changing the environment.
"""
from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from chalicelib.aws import session
from chalicelib.config import Settings, get_settings

if TYPE_CHECKING:  # pragma: no cover
    from pynamodb.connection import Connection

    from chalicelib.aws.storage import Storage

_lock = threading.Lock()


class Dependencies:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # (kind, user) -> the epoch second in which this container already refused them (usage.admit):
        # the rest of that second is refused from memory, at no DynamoDB cost. Container-lived like
        # the clients, and forgotten with them by reset().
        self.refused_seconds: dict[tuple[str, str], int] = {}

    @property
    def dynamodb(self) -> "Connection":
        """The PynamoDB connection whose client every model uses; transactions take it directly."""
        return session.dynamodb()

    @property
    def s3(self) -> Any:
        return session.client("s3")

    @property
    def sqs(self) -> Any:
        return session.client("sqs")

    @property
    def events(self) -> Any:
        return session.client("events")

    @functools.cached_property
    def event_bus(self) -> Any:
        from chalicelib.aws.event_bus import EventBus
        from chalicelib.events.mapping import SOURCE

        return EventBus(self.events, self.settings.event_bus_name, SOURCE)

    @functools.cached_property
    def storage(self) -> "Storage":
        from chalicelib.aws.presign import frozen
        from chalicelib.aws.storage import Storage

        # The session the S3 client will sign with: its credentials are the client's (refreshed by
        # botocore). The client itself is built on first use: a worker may skip its event before.
        credentials = session.botocore_session().get_credentials()
        return Storage(lambda: self.s3, self.settings.upload_bucket,
                       frozen(credentials) if credentials is not None else None)

    @functools.cached_property
    def provider(self) -> Any:
        """The image provider (FLUX or offline): one per container, so its HTTP connections are reused."""
        from chalicelib.generation.providers import get_provider

        return get_provider(self.settings)

    @functools.cached_property
    def attribute_model(self) -> Any:
        """The attribute suggestion model (None when suggestions do not run here): one per container."""
        from chalicelib.avatars.suggestions import model_for

        return model_for(self.settings)


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
    session.reset()
    _deps = None
