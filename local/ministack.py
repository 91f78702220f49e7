"""ministack (S3, SQS, DynamoDB, … over HTTP) as a child process, with persistence on.

ministack pins its own botocore, so it runs from its own venv (`.venv-ministack`, see Makefile).
Its state is written to disk only on a clean shutdown: always stop it with SIGTERM and wait.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXECUTABLE = ROOT / ".venv-ministack" / "bin" / "ministack"
# What the service needs. The packaged-stack work adds cloudformation, lambda, apigateway,
# secretsmanager, iam, logs… (LOCAL_AWS_SERVICES="all" or a comma list overrides).
DEFAULT_SERVICES: tuple[str, ...] = ("s3", "sqs", "dynamodb", "dynamodbstreams", "events", "sts")
HOST = "127.0.0.1"


class LocalStackError(RuntimeError):
    """The local stack cannot start; the message says why and what to do."""


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: connections in TIME_WAIT from a previous run do not count, a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def services_from_env(value: str | None) -> tuple[str, ...] | None:
    """LOCAL_AWS_SERVICES: unset → the default list; "all" → every ministack service (None)."""
    if value is None or not value.strip():
        return DEFAULT_SERVICES
    if value.strip().lower() == "all":
        return None
    return tuple(s.strip() for s in value.split(",") if s.strip())


def _load_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl  # resolved here, never after fork
    except Exception:  # not Linux / no libc symbol
        return None


_PRCTL = _load_prctl() if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1
_SIGTERM = int(signal.SIGTERM)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """If we are killed hard, ministack still gets SIGTERM (and saves its state). Note: "parent" is
    the *thread* that started it — start ministack from a long-lived thread (the main one)."""
    _PRCTL(_PR_SET_PDEATHSIG, _SIGTERM)


def terminate(proc: "subprocess.Popen | None", timeout: float, *, name: str = "process", note: str = "") -> int | None:
    """SIGTERM, wait up to `timeout`, then SIGKILL; the exit code (None if there was no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within {timeout:.0f}s: killing it{note}", file=sys.stderr)
            proc.kill()
            proc.wait()
    return proc.returncode


class Ministack:
    def __init__(self, data_dir: str | os.PathLike, port: int = 4566, *,
                 services: Sequence[str] | None = DEFAULT_SERVICES,
                 executable: str | os.PathLike | None = None, log_level: str = "INFO",
                 extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = int(port)
        self.services = tuple(services) if services else None
        self.executable = Path(executable) if executable else DEFAULT_EXECUTABLE
        self.log_level = log_level
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / "ministack.log"

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               # the app's settings must not leak into the emulator (its LOG_LEVEL, SERVICES…)
               if k not in {"LOG_LEVEL", "SERVICES", "PERSIST_STATE", "STATE_DIR", "S3_PERSIST",
                            "S3_DATA_DIR", "GATEWAY_PORT", "EDGE_PORT", "BIND_HOST"}}
        env.update({
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": HOST,
            "PERSIST_STATE": "1",
            "STATE_DIR": str(self.data_dir / "state"),
            "S3_PERSIST": "1",
            "S3_DATA_DIR": str(self.data_dir / "s3"),
            "LOG_LEVEL": self.log_level,
            "MINISTACK_REGION": "us-east-1",
            "PYTHONUNBUFFERED": "1",
        })
        if self.services:
            env["SERVICES"] = ",".join(self.services)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> "Ministack":
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> "Ministack":
        """Start the process without waiting (`wait_ready` next): lets the caller overlap its own
        start-up work (importing boto3, building clients) with ministack's ~0.5 s."""
        if not self.executable.exists():
            raise LocalStackError(f"ministack is not installed at {self.executable}: run `make venv`")
        if port_in_use(self.port):
            raise LocalStackError(
                f"port {self.port} on {HOST} is already in use (another `make run` or ministack?). "
                f"Stop it or choose another port: LOCAL_AWS_PORT=4567 make run")
        (self.data_dir / "state").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "s3").mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            # Own session: Ctrl-C in the terminal reaches the stack only, which stops ministack last.
            self.proc = subprocess.Popen([str(self.executable)], env=self._env(), cwd=str(self.data_dir),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent if _PRCTL is not None else None)
        finally:
            log.close()
        return self

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/_ministack/health", timeout=1) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def wait_ready(self, timeout: float = 30.0) -> "Ministack":
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise LocalStackError(f"ministack exited with code {code} during start-up; "
                                          f"last lines of {self.log_path}:\n{self.log_tail()}")
                if self.health() is not None:
                    return self
                time.sleep(0.03)
            raise LocalStackError(f"ministack did not answer on {self.endpoint_url} within {timeout:.0f}s; "
                                  f"see {self.log_path}:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait: ministack saves its state during a clean shutdown only.
        SIGKILL only after `timeout` (state since start-up is then lost)."""
        proc, self.proc = self.proc, None
        return terminate(proc, timeout, name="ministack", note=" (unsaved state is lost)")

    def __enter__(self) -> "Ministack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
