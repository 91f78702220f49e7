"""Run the embedded local stack (`python -m local.stack`) or ministack alone for integration tests.

    stack = LocalStack(tmp_dir, env={"FLUX_ENDPOINT_URL": ...}).start()
    stack.api("/projects")            # → http://127.0.0.1:<port>/api/apps/avatar-creator/projects
    stack.request("GET", "/api/apps/avatar-creator/projects", token=stack.token("alice"))
    stack.client("sqs")               # boto3 client on the stack's ministack
    stack.stop()                      # SIGTERM + wait: ministack saves its state
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
API_PREFIX = "/api/apps/avatar-creator"
TEST_JWT_SECRET = "integration-test-secret-0123456789abcdef"
OUTPUT_KEYS = ("ApiUrl", "AwsEndpoint", "Region", "UploadBucket", "TableName",
               "UploadQueueUrl", "UploadDlqUrl", "GenerationQueueUrl", "GenerationDlqUrl",
               "UsageEventsQueueUrl", "UsageEventsDlqUrl", "CleanupQueueUrl", "CleanupDlqUrl")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:200]!r}>"


def http(method: str, url: str, body: bytes | dict | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> Response:
    headers = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


class LocalStack:
    def __init__(self, data_dir: str | os.PathLike, *, port: int | None = None, aws_port: int | None = None,
                 env: dict[str, str] | None = None, visibility_timeout: int | None = 3,
                 jwt_secret: str = TEST_JWT_SECRET) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.aws_port = aws_port or free_port()
        self.jwt_secret = jwt_secret
        self.extra_env = dict(env or {})
        self.visibility_timeout = visibility_timeout
        self.proc: subprocess.Popen | None = None
        self.outputs: dict[str, Any] = {}
        self.log_path = self.data_dir / "stack.log"

    # ---- lifecycle -------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCAL_"))}
        env.update({"PORT": str(self.port), "LOCAL_AWS_PORT": str(self.aws_port),
                    "LOCAL_DATA_DIR": str(self.data_dir), "JWT_SECRET": self.jwt_secret,
                    "PYTHONUNBUFFERED": "1"})
        if self.visibility_timeout is not None:
            env["LOCAL_VISIBILITY_TIMEOUT"] = str(self.visibility_timeout)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> "LocalStack":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "outputs.json").unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=str(ROOT), env=self.env(),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        outputs_file = self.data_dir / "outputs.json"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"local stack exited with {self.proc.returncode}:\n{self.log_tail()}")
            if outputs_file.exists():
                self.outputs = json.loads(outputs_file.read_text())
                if self._healthy():
                    return
            time.sleep(0.05)
        raise TimeoutError(f"local stack not ready within {timeout:.0f}s:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        for path in (f"{API_PREFIX}/health", "/config.json"):
            try:
                if http("GET", self.url(path), timeout=2).status == 200:
                    return True
            except OSError:
                pass
        return False

    def stop(self, timeout: float = 60.0) -> int | None:
        from local.ministack import terminate

        proc, self.proc = self.proc, None
        return terminate(proc, timeout, name="local stack")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- helpers ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def api(self, path: str = "") -> str:
        """URL of an API route: api("/projects") → .../api/apps/avatar-creator/projects."""
        return self.base_url + API_PREFIX + path

    def token(self, user: str = "alice", **kwargs: Any) -> str:
        from chalicelib.auth import issue_token

        return issue_token(user, secret=self.jwt_secret, **kwargs)

    def request(self, method: str, path: str, body: bytes | dict | None = None, *, token: str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 10) -> Response:
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return http(method, self.url(path), body, headers, timeout)

    def client(self, service: str) -> Any:
        from local import aws

        return aws.client(service, self.aws_endpoint, self.outputs.get("Region") or aws.REGION)

    def queues_idle(self, *output_keys: str) -> bool:
        """No message waiting, in flight (received and not yet deleted) or delayed on these queues
        (named by their outputs key, e.g. "GenerationQueueUrl"): every delivery so far has ended."""
        sqs = self.client("sqs")
        counts = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                  "ApproximateNumberOfMessagesDelayed")
        for key in output_keys:
            attrs = sqs.get_queue_attributes(QueueUrl=self.outputs[key], AttributeNames=list(counts))["Attributes"]
            if any(int(attrs.get(name, 0)) for name in counts):
                return False
        return True


def start_ministack(data_dir: str | os.PathLike, port: int | None = None):
    """ministack alone (no app), persisted under data_dir: `with start_ministack(tmp) as ms: ms.endpoint_url`."""
    from local.ministack import Ministack

    return Ministack(data_dir, port or free_port()).start()
