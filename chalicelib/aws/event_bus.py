"""Putting events on the EventBridge bus other apps subscribe to (source = the service's, e.g.
lumiku.avatar-creator; detail-type = the event type, detail = the event)."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import DependencyError

MAX_ENTRIES = 10  # PutEvents' limit per call


class EventBus:
    def __init__(self, client: Any, bus_name: str | None, source: str) -> None:
        self._client = client
        self.bus_name = bus_name
        self.source = source

    def entry(self, event: dict, bus_name: str) -> dict:
        return {"Source": self.source, "DetailType": event["type"], "EventBusName": bus_name,
                "Detail": json.dumps(event, separators=(",", ":"), ensure_ascii=False)}

    def put(self, events: list[dict]) -> None:
        """All or raise: an event EventBridge did not take fails the stream record, which is retried
        (the same ids: consumers dedupe on detail.id)."""
        if not events:
            return
        if not self.bus_name:
            raise DependencyError("EVENT_BUS_NAME is not configured")
        from botocore.exceptions import BotoCoreError, ClientError

        for start in range(0, len(events), MAX_ENTRIES):
            chunk = events[start:start + MAX_ENTRIES]
            try:
                answer = self._client.put_events(Entries=[self.entry(e, self.bus_name) for e in chunk])
            except (BotoCoreError, ClientError) as exc:
                raise DependencyError("Could not put events on the event bus") from exc
            if answer.get("FailedEntryCount"):
                codes = [e.get("ErrorCode") for e in answer.get("Entries", []) if e.get("ErrorCode")]
                raise DependencyError(f"{answer['FailedEntryCount']} event(s) were refused by the event bus",
                                      details={"errors": codes})
