"""CloudWatch metrics of generation jobs, as Embedded Metric Format log lines (Powertools Metrics):
no API call, CloudWatch extracts them from the worker's log. Loaded by the generation worker only
(Powertools costs a cold start ~16 ms; the API never imports this module).

    job_finished(status=…, images_made=…, failures=[{code,…}], provider_ms=…, total_ms=…)

Namespace "AvatarCreator", dimension `service`; failures also by `reason` (the errorCode). The
dashboard of infra/resources.json (GenerationDashboard) charts them.
"""
from __future__ import annotations

import os
from collections import Counter

NAMESPACE = "AvatarCreator"
SERVICE = "avatar-creator"


def job_finished(*, status: str, images_made: int, failures: list[dict], provider_ms: int | None,
                 total_ms: int | None) -> None:
    """Never raises: a metrics failure must not fail a job that is already saved."""
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE  # the local stack: AvatarCreatorLocal
    try:
        from aws_lambda_powertools import Metrics
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        metrics = Metrics(namespace=namespace, service=SERVICE)
        metrics.add_metric(name="JobsFinished", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ImagesGenerated", unit=MetricUnit.Count, value=images_made)
        if total_ms is not None:
            metrics.add_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=total_ms)
        if provider_ms is not None:
            metrics.add_metric(name="ProviderLatency", unit=MetricUnit.Milliseconds, value=provider_ms)
        metrics.flush_metrics()
        for reason, count in Counter(f["code"] for f in failures).items():
            with single_metric(name="ImagesFailed", unit=MetricUnit.Count, value=count, namespace=namespace,
                               default_dimensions={"service": SERVICE}) as metric:
                metric.add_dimension(name="reason", value=reason)
        if status == "failed":
            reason = failures[0]["code"] if failures else "unknown"
            with single_metric(name="JobsFailed", unit=MetricUnit.Count, value=1, namespace=namespace,
                               default_dimensions={"service": SERVICE}) as metric:
                metric.add_dimension(name="reason", value=reason)
    except Exception:  # noqa: BLE001
        from chalicelib.observability import logger

        logger.exception("job metrics not emitted")
