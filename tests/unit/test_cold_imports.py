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
    "chalicelib.schemas", "chalicelib.avatars.service", "chalicelib.avatars.uploads", "chalicelib.generation.requests", "chalicelib.generation.worker",
    "chalicelib.usage.service", "chalicelib.presets.service", "chalicelib.avatars.images", "chalicelib.generation.providers", "chalicelib.auth",
    "chalicelib.generation.content_policy", "chalicelib.generation.safety", "chalicelib.generation.metrics",
    "regex", "confusable_homoglyphs",  # the content policy's Unicode data: loaded with the policy
]


def _imported_by(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                         cwd=str(ROOT), capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"})
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_app_loads_no_heavy_library_and_no_domain_module():
    loaded = _imported_by("import app")
    assert "chalice" in loaded and "chalicelib.api.avatars" in loaded  # it did import the app
    assert sorted(loaded & set(NOT_AT_IMPORT)) == []


def test_a_route_loads_its_domain_module_when_it_runs():
    """Route modules import the domain inside their functions (as app.py does): a module-level import
    would load it for every function's cold start."""
    import ast

    for path in sorted((ROOT / "chalicelib" / "api").glob("*.py")):
        tree = ast.parse(path.read_text())
        top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        names = {alias.name for node in top for alias in node.names} | {
            f"{node.module}.{alias.name}" for node in top if isinstance(node, ast.ImportFrom) for alias in node.names}
        assert not names & set(NOT_AT_IMPORT) and not {n.split(".")[-1] for n in names} & {
            m.rsplit(".", 1)[-1] for m in NOT_AT_IMPORT if m.startswith("chalicelib.")}, path.name
    loaded = _imported_by("import app\nfrom chalicelib.api import avatars\navatars.list_avatars")
    assert "chalicelib.avatars.service" not in loaded
