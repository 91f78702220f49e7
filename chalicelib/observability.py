"""Structured JSON logs (Powertools Logger), shared by every function of the app.

The Logger is built on its first use, not at import: importing Powertools costs every cold start
about 16 ms (in the deployment package), and an API request that succeeds writes no log line of ours (API Gateway's access log
records it). The request id the middleware sets before then is applied when the Logger is built.
"""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from aws_lambda_powertools import Logger

SERVICE = "avatar-creator"


class LazyLogger:
    """Forwards everything to one Powertools Logger, made on first use (thread-safe: the local
    server runs handlers on threads)."""

    def __init__(self, service: str = SERVICE) -> None:
        self._service = service
        self._logger: Logger | None = None
        self._correlation_id: str | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._logger is not None

    def _get(self) -> "Logger":
        if self._logger is None:
            with self._lock:
                if self._logger is None:
                    from aws_lambda_powertools import Logger

                    logger = Logger(service=self._service, level=os.environ.get("LOG_LEVEL", "INFO"))
                    if self._correlation_id is not None:
                        logger.set_correlation_id(self._correlation_id)
                    self._logger = logger
        return self._logger

    def set_correlation_id(self, value: str | None) -> None:
        # Called on every request: remembered until a line is logged, so a quiet request never loads
        # Powertools. Under the lock: _get() may be building the Logger on another thread.
        with self._lock:
            if self._logger is None:
                self._correlation_id = value
                return
        self._logger.set_correlation_id(value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


logger = LazyLogger()

NAMESPACE = "AvatarCreator"


def dead_letter_metric(queue: str) -> None:
    """One `DeadLetters` (dimension `queue`) per message a DLQ consumer takes: the DLQ alarms watch
    this, because a consumer drains its DLQ faster than the queue's depth could be seen. An EMF log
    line (no API call); never raises."""
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE
    try:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        with single_metric(name="DeadLetters", unit=MetricUnit.Count, value=1, namespace=namespace,
                           default_dimensions={"service": SERVICE}) as metric:
            metric.add_dimension(name="queue", value=queue)
    except Exception:  # noqa: BLE001 — a metric must never fail the dead letter's own handling
        logger.exception("dead-letter metric not emitted")
