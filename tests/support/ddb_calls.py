"""Count the DynamoDB API calls the app makes, through botocore's own event hooks.

    with DynamoDBCalls() as calls:
        client.http.get(...)
    assert calls.names == ["BatchGetItem", "Query"]

Every botocore client gets its own copy of its session's event handlers when it is created, so
there are two hook points: `before-call.dynamodb` registered on the clients that already exist
(every PynamoDB connection the app uses: the models' and dependencies' `dynamodb`) and, for
clients created while counting (a new thread's session, a rebound model), botocore's
BUILTIN_HANDLERS, which every new Session installs. One call is one API request as the app made
it; botocore's own retries of that request are not extra calls.
"""
from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

from botocore import handlers as botocore_handlers

EVENT = "before-call.dynamodb"


def _existing_clients() -> list[Any]:
    """The container's DynamoDB client, if already built (counting builds nothing): every model and
    transaction makes its calls on it (chalicelib.aws.session)."""
    from chalicelib.aws import session

    connection = session._dynamodb
    client = connection.__dict__.get("_client") if connection is not None else None
    return [client] if client is not None else []


class DynamoDBCalls:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.bodies: list[dict] = []  # each request's parameters, as sent (JSON protocol)
        self._lock = threading.Lock()
        self._active = False
        self._unique_id = f"ddb-call-counter-{uuid.uuid4().hex}"
        self._clients: list[Any] = []
        self._builtin = (EVENT, self._on_call)

    def _on_call(self, model: Any, params: Any = None, **_: Any) -> None:
        if self._active:
            import json

            raw = (params or {}).get("body") if isinstance(params, dict) else None
            try:
                parsed = json.loads(raw) if raw else {}
            except (TypeError, ValueError):
                parsed = {}
            with self._lock:
                self.names.append(model.name)
                self.bodies.append(parsed)

    def __enter__(self) -> "DynamoDBCalls":
        self._active = True
        botocore_handlers.BUILTIN_HANDLERS.append(self._builtin)
        for client in _existing_clients():
            client.meta.events.register(EVENT, self._on_call, unique_id=self._unique_id)
            self._clients.append(client)
        return self

    def __exit__(self, *exc: object) -> None:
        self._active = False
        if self._builtin in botocore_handlers.BUILTIN_HANDLERS:
            botocore_handlers.BUILTIN_HANDLERS.remove(self._builtin)
        for client in self._clients:
            client.meta.events.unregister(EVENT, unique_id=self._unique_id)
        self._clients = []

    @property
    def count(self) -> int:
        return len(self.names)

    def by_operation(self) -> dict[str, int]:
        return dict(Counter(self.names))

    def partition_keys(self) -> list[str]:
        """Every PK a request named (keys, items, key conditions' values), as strings."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                pk = node.get("PK")
                if isinstance(pk, dict) and "S" in pk:
                    found.append(pk["S"])
                for key, value in node.items():
                    if key == "ExpressionAttributeValues" and isinstance(value, dict):
                        found.extend(v["S"] for v in value.values() if isinstance(v, dict) and "S" in v
                                     and str(v["S"]).startswith(("U#", "RATE#")))
                    else:
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        for body in self.bodies:
            walk(body)
        return found

    def reset(self) -> None:
        with self._lock:
            self.names = []
            self.bodies = []
