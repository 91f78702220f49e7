"""Generation job metrics are EMF lines: what CloudWatch extracts (namespace, dimensions, values)."""
from __future__ import annotations

import json

from chalicelib.generation import metrics as job_metrics


def emf_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_a_finished_job_emits_duration_latency_images_and_failures_by_reason(capsys):
    job_metrics.job_finished(status="completed", images_made=2, provider_ms=1200, total_ms=3400,
                             failures=[{"code": "unsafe_output"}, {"code": "unsafe_output"},
                                       {"code": "provider_refused"}])
    lines = emf_lines(capsys.readouterr().out)
    main = next(x for x in lines if "JobDuration" in x)
    assert main["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AvatarCreator"
    assert (main["ImagesGenerated"], main["JobDuration"], main["ProviderLatency"]) == ([2.0], [3400.0], [1200.0])
    failed = {x["reason"]: x["ImagesFailed"] for x in lines if "ImagesFailed" in x}
    assert failed == {"unsafe_output": [2.0], "provider_refused": [1.0]}
    assert not any("JobsFailed" in x for x in lines)


def test_a_failed_job_counts_its_reason():
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        job_metrics.job_finished(status="failed", images_made=0, provider_ms=None, total_ms=10,
                                 failures=[{"code": "unsafe_output"}])
    [failed_job] = [x for x in emf_lines(out.getvalue()) if "JobsFailed" in x]
    assert failed_job["reason"] == "unsafe_output"


def test_the_dashboard_charts_the_metrics_the_worker_emits():
    from tests.support.infra import RESOURCES

    resource = json.loads(RESOURCES.read_text())["Resources"]["GenerationDashboard"]
    assert resource["Type"] == "AWS::CloudWatch::Dashboard"
    body = json.loads(resource["Properties"]["DashboardBody"]["Fn::Sub"])
    text = json.dumps(body)
    for name in ("JobDuration", "ProviderLatency", "ImagesGenerated", "ImagesFailed"):
        assert name in text
    assert all(w["properties"].get("metrics") for w in body["widgets"])
    assert job_metrics.NAMESPACE in text
