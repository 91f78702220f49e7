"""README's "Try the API" runs as written against a local stack on a random port: ids carried between
steps, ApiUrl read from outputs.json, the sample photo in docs/, nothing but bash, curl and python3."""
from __future__ import annotations

import os
import subprocess

from local.stack import DEV_JWT_SECRET
from tests.support.local_stack import ROOT, LocalStack


def walkthrough() -> str:
    block = (ROOT / "README.md").read_text().split("## Try the API", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = block.splitlines()
    assert lines[0].startswith("make run &")  # the stack below stands in for it
    # `make token` is what a newcomer runs; here the command it runs (make would check the shared venv).
    return "\n".join(["set -euo pipefail", *(line.replace("make -s token USER=alice", ".venv/bin/python -m local.token alice")
                                             for line in lines[1:])])


def test_the_readme_walkthrough_runs_on_any_port(tmp_path):
    with LocalStack(tmp_path / "stack", jwt_secret=DEV_JWT_SECRET) as stack:
        work = tmp_path / "run"
        work.mkdir()
        for name in ("docs", ".venv", "local", "chalicelib"):
            (work / name).symlink_to(ROOT / name)
        env = {**os.environ, "LOCAL_DATA_DIR": str(stack.data_dir)}
        done = subprocess.run(["bash", "-c", walkthrough()], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "S3 answered 204" in out
    assert "is ready" in out
    assert "\nSarah\n" in out  # the edited attributes make the filter find the uploaded avatar
    assert "is completed: avatar ava_" in out
    assert '"status":"recorded"' in out and "'count': 1" in out
    assert '"totalAvatars":2' in out
