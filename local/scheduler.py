"""Runs the app's `@app.schedule` handlers on the local stack, as EventBridge Scheduler does on AWS —
on a short period (LOCAL_SWEEP_SECONDS, default 30) so what they finish shows up quickly."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("local.scheduler")


class Scheduler:
    def __init__(self, app: Any, period_seconds: float) -> None:
        self.app = app
        self.period = period_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runs = 0

    def handlers(self) -> list[tuple[str, Any]]:
        from chalice.app import ScheduledEventConfig

        return [(config.name, self.app.handler_map[config.name]) for config in getattr(self.app, "event_sources", [])
                if isinstance(config, ScheduledEventConfig)]

    def start(self) -> "Scheduler":
        for name, handler in self.handlers():
            thread = threading.Thread(target=self._loop, args=(name, handler), name=f"schedule-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def describe(self) -> list[str]:
        return [f"{name} every {self.period:g}s" for name, _ in self.handlers()]

    def _loop(self, name: str, handler: Any) -> None:
        while not self._stop.wait(self.period):
            event = {"version": "0", "id": f"local-{time.time_ns()}", "detail-type": "Scheduled Event",
                     "source": "aws.events", "account": "000000000000", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "region": "us-east-1", "resources": [], "detail": {}}
            started = time.monotonic()
            try:
                result = handler(event, None)
            except Exception as exc:  # noqa: BLE001 - the next run tries again, as on AWS
                log.error("schedule %s raised %s: %s", name, type(exc).__name__, exc)
                continue
            self.runs += 1
            if result and any((result or {}).values()):
                log.info("schedule %s: %s (%.0fms)", name, result, (time.monotonic() - started) * 1000)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
