"""README's "Try the API" runs as written: its first block pasted into bash at the top of the clone
installs what is missing (`make venv`), starts the stack with a fresh data directory (mktemp), waits
for it, and goes through the API; the
second block stops the stack and removes what the walkthrough made. Free ports come from the
environment (`PORT`, `LOCAL_AWS_PORT`, which `make run` reads); nothing is left in the clone.

The one thing added: `make` is told that the machine's venvs are up to date (`-o`), because a
worktree's requirement files are newer than the shared venvs' install stamps and make would otherwise
reinstall them — on a fresh clone `make run` installs them once, which is what the README says."""
from __future__ import annotations

import os
import re
import subprocess
import urllib.request

from tests.support.local_stack import ROOT, free_port

MAKE_AS_INSTALLED = ('make() { command make -o .venv/.installed -o .venv-ministack/.installed '
                     '-o chalicelib/aws/_botocore_data/VERSION "$@"; }')


def blocks() -> tuple[str, str]:
    section = (ROOT / "README.md").read_text().split("## Try the API", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(found) == 2, "the walkthrough and its clean-up"
    return found[0], found[1]


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_the_readme_walkthrough_runs_as_written_with_a_fresh_data_dir_and_leaves_nothing_behind(tmp_path):
    walkthrough, cleanup = blocks()
    assert "sleep 5" not in walkthrough and "mktemp" in walkthrough
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "PORT": str(free_port()), "LOCAL_AWS_PORT": str(free_port()), "TMPDIR": str(temp),
           "LOCAL_SEED": "0"}  # the preset gallery is not part of the walkthrough
    env.pop("LOCAL_DATA_DIR", None)
    before = git_status()
    # The image URL is fetched while the stack still runs (between the two blocks).
    script = "\n".join(["set -euo pipefail", MAKE_AS_INSTALLED, walkthrough,
                        "curl -s -o /dev/null -w 'image answered %{http_code}\\n' \"$IMG\"", cleanup])
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert '"status": "ok"' in out  # the health check, shown indented
    assert "S3 answered 204" in out
    assert "is ready" in out
    assert "\nSarah\n" in out  # the edited attributes make the filter find the uploaded avatar
    assert "is completed: avatar ava_" in out
    assert '"status": "recorded"' in out and "'count': 1" in out
    assert '"totalAvatars": 2' in out  # indented JSON, not one line
    assert re.search(r"the uploaded photo: +http://127\.0\.0\.1:\d+/\S+X-Amz-Signature=", out), out
    assert re.search(rf"the page, on Arif: +http://127\.0\.0\.1:{env['PORT']}/#/projects/\w+/avatars/ava_\w+", out), out
    assert "image answered 200" in out
    # Nothing left behind: the clone is as it was, and the temporary directories are gone.
    assert git_status() == before
    assert list(temp.iterdir()) == []
