"""The shared logger: Powertools is loaded by the first line logged, with the request id set before it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.infra import ROOT

SCRIPT = """
import sys
from chalicelib.observability import logger
logger.set_correlation_id("req-1")
print("loaded before a line:", "aws_lambda_powertools" in sys.modules, logger.built, file=sys.stderr)
logger.info("hello", extra={"k": 1})
logger.set_correlation_id("req-2")
logger.warning("again")
print("loaded after:", "aws_lambda_powertools" in sys.modules, logger.built, file=sys.stderr)
"""


@pytest.fixture(scope="module")
def run() -> tuple[list[dict], str]:
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(ROOT), capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "POWERTOOLS_SERVICE_NAME": "x", "LOG_LEVEL": "INFO"})
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()], out.stderr


def test_setting_the_request_id_does_not_load_powertools(run):
    _, stderr = run
    assert "loaded before a line: False False" in stderr
    assert "loaded after: True True" in stderr


def test_the_first_line_carries_the_request_id_set_before_the_logger_existed(run):
    lines, _ = run
    assert [(line["message"], line["level"], line.get("correlation_id")) for line in lines] == [
        ("hello", "INFO", "req-1"), ("again", "WARNING", "req-2")]
    assert lines[0]["service"] == "avatar-creator" and lines[0]["k"] == 1
