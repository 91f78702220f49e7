"""A handler on botocore events of every client the app uses while the block runs: the clients that
already exist (the container's DynamoDB client, the dependencies' S3 and SQS) get it registered, and
botocore's BUILTIN_HANDLERS hand it to any client created meanwhile. A handler that raises stands for
what AWS would answer (a throttle, a conflict, a network cut)."""
from __future__ import annotations

from typing import Any, Callable


class Hooked:
    def __init__(self, event: str, handler: Callable[..., Any], clients: Callable[[], list] | None = None):
        self.event, self.handler = event, handler
        self._clients_of = clients or _dynamodb_clients
        self._clients: list = []

    def __enter__(self) -> "Hooked":
        from botocore import handlers

        handlers.BUILTIN_HANDLERS.append((self.event, self.handler))
        self._clients = self._clients_of()
        for client in self._clients:
            client.meta.events.register(self.event, self.handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        from botocore import handlers

        handlers.BUILTIN_HANDLERS.remove((self.event, self.handler))
        for client in self._clients:
            client.meta.events.unregister(self.event, self.handler)


def _dynamodb_clients() -> list:
    from tests.support.ddb_calls import _existing_clients

    return _existing_clients()
