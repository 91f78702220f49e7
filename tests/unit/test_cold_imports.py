"""What a cold start imports: every Lambda function imports app.py, so what app.py pulls in is paid
by all of them. Heavy libraries and domain modules load in the handler that uses them (timings are
in bench/cold_start.py; this checks the structure, in a fresh interpreter)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.support.infra import ROOT

NOT_AT_IMPORT = [
    "PIL", "huggingface_hub", "aws_xray_sdk", "pydantic", "jwt", "boto3", "s3transfer",
    "aws_lambda_powertools",  # the Logger too (chalicelib.observability); batch and idempotency with it
    "chalicelib.schemas", "chalicelib.avatars", "chalicelib.uploads", "chalicelib.generation",
    "chalicelib.usage", "chalicelib.presets", "chalicelib.images", "chalicelib.providers", "chalicelib.auth",
    "chalicelib.content_policy", "chalicelib.safety", "chalicelib.job_metrics",
]


def _imported_by(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                         cwd=str(ROOT), capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"})
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_app_loads_no_heavy_library_and_no_domain_module():
    loaded = _imported_by("import app")
    assert "chalice" in loaded and "chalicelib.aws.models" in loaded  # it did import the app
    assert sorted(loaded & set(NOT_AT_IMPORT)) == []


def test_a_route_module_loads_its_domain_module_on_first_use():
    loaded = _imported_by("import app\nfrom chalicelib.api import avatars\navatars.avatars.to_json")
    assert "chalicelib.avatars" in loaded and "chalicelib.uploads" not in loaded
