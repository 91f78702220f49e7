"""One local HTTP port for the page and the API (never deployed).

- `/api/...` → the Chalice app through chalice.local's LocalGateway (authorizer included), with
  API Gateway's own errors rewritten to the service's error shape (local/gateway.py);
- `GET /config.json` → `{"apiUrl", "stage", "devLogin"}`: the page is static files configured with
  the API URL, as it would be on S3/CloudFront;
- `POST /_local/token` `{"userId": "alice"}` → `{"token": ...}`: dev sign-in for the local page only;
- anything else (GET/HEAD) → a static file from `web/`.
"""
from __future__ import annotations

import json
import mimetypes
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
    ThreadedHTTPServer,
)

from local import gateway

ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = ROOT / "web"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
MAX_BODY_BYTES = 1024 * 1024  # API Gateway has a hard limit too (10 MB); the app's own is smaller
DRAIN_MAX_BYTES = 16 * 1024 * 1024  # larger bodies are refused without reading them
MAX_TOKEN_BODY = 4096
API_ROOT = "/api/"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".json": "application/json", ".map": "application/json",
    ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".webp": "image/webp", ".gif": "image/gif", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8",
    ".woff": "font/woff", ".woff2": "font/woff2", ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
}


def chalice_config(function_name: str = "api_handler", stage: str = "dev") -> Config:
    """The project's .chalice/config.json (lambda_timeout, lambda_memory_size per function)."""
    try:
        from_disk = json.loads(CHALICE_CONFIG.read_text())
    except (OSError, ValueError):
        from_disk = {}
    return Config(chalice_stage=stage, function_name=function_name, config_from_disk=from_disk,
                  default_params={"lambda_timeout": 60, "lambda_memory_size": 128})


@dataclass
class Site:
    api_url: str
    jwt_secret: str
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    web_dir: Path = WEB_DIR
    stage: str = "local"
    max_body_bytes: int = MAX_BODY_BYTES
    access_log: bool = True
    extra_config: dict[str, Any] = field(default_factory=dict)


class LocalRequestHandler(ChaliceRequestHandler):
    server_version = "avatar-creator-local"

    def version_string(self) -> str:
        return self.server_version

    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Chalice,
                 config: Config) -> None:
        # One LocalGateway for the server, not one per request as chalice.local builds it.
        self.local_gateway = server.local_gateway
        self.site: Site = server.site
        self._status = 0
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    # ---- plumbing --------------------------------------------------------------------------
    def log_request(self, code: Any = "-", size: Any = "-") -> None:  # one line per request, below
        pass

    def log_message(self, format: str, *args: Any) -> None:
        if self.site.access_log:
            sys.stderr.write("http: %s\n" % (format % args))

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def _send(self, status: int, headers: dict[str, Any], body: bytes | str | None) -> None:
        if body is None:
            body = b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() == "content-length":
                continue
            for v in value if isinstance(value, list) else [value]:
                self.send_header(name, str(v))
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})},
                   json.dumps(payload, separators=(",", ":")).encode())

    def _send_error(self, response: tuple[int, dict[str, str], bytes]) -> None:
        status, headers, body = response
        self._send(status, headers, body)

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None after answering 411/413 (unread bodies close the connection)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self._send_error(gateway.error_response(411, "length_required", "Send a Content-Length header"))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._send_error(gateway.error_response(400, "bad_request", "Invalid Content-Length header"))
            return None
        if length > limit:
            self.close_connection = True
            # Read (and drop) a moderately oversized body first: a client still sending it would meet a
            # closed socket (a broken pipe) instead of the 413 it should read.
            if length <= DRAIN_MAX_BYTES:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 65536))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            self._send_error(gateway.error_response(413, "payload_too_large",
                                                    f"Request body is larger than {limit} bytes",
                                                    {"limit": limit}))
            return None
        return self.rfile.read(length) if length else b""

    # ---- dispatch --------------------------------------------------------------------------
    def _dispatch(self) -> None:
        started = time.monotonic()
        try:
            path = urlsplit(self.path).path
            if path.startswith(API_ROOT) or path == API_ROOT.rstrip("/"):
                self._api()
            elif path == "/config.json" and self.command in ("GET", "HEAD"):
                self._send_json(200, {"apiUrl": self.site.api_url, "stage": self.site.stage, "devLogin": True,
                                      **self.site.extra_config})
            elif path == "/_local/token":
                self._token()
            elif self.command in ("GET", "HEAD"):
                self._static(path)
            else:
                self._send_error(gateway.error_response(405, "method_not_allowed", "Method not allowed"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # noqa: BLE001 - never leak a traceback to the client
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            try:
                self._send_error(gateway.error_response(500, "internal_error", "Internal server error"))
            except OSError:
                pass
        finally:
            if self.site.access_log:
                sys.stderr.write('http: %s "%s %s" %s %.0fms\n' % (
                    self.client_address[0], self.command, self.path, self._status or "-",
                    (time.monotonic() - started) * 1000))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _api(self) -> None:
        body = self._read_body(self.site.max_body_bytes)
        if body is None:
            return
        headers = dict(self.headers)
        try:
            response = self.local_gateway.handle_request(method=self.command, path=self.path,
                                                         headers=headers, body=body or None)
        except LocalGatewayException as exc:
            self._send_error(gateway.gateway_error_response(exc))
            return
        if gateway.is_method_miss(response):
            self._send_error(gateway.not_found())
            return
        out_headers = dict(response.get("headers") or {})
        out_headers.update(response.get("multiValueHeaders") or {})
        response = self._handle_binary(response)
        self._send(response["statusCode"], out_headers, response.get("body"))

    def _token(self) -> None:
        if self.command != "POST":
            self._send_error(gateway.error_response(405, "method_not_allowed", "POST {\"userId\": ...}"))
            return
        raw = self._read_body(MAX_TOKEN_BODY)
        if raw is None:
            return
        try:
            user_id = json.loads(raw or b"{}").get("userId")
        except (ValueError, AttributeError):
            user_id = None
        if not isinstance(user_id, str):
            self._send_error(gateway.error_response(400, "validation_error", 'Send {"userId": "<id>"}'))
            return
        from chalicelib.auth import issue_token

        try:
            token = issue_token(user_id, secret=self.site.jwt_secret, issuer=self.site.jwt_issuer,
                                audience=self.site.jwt_audience)
        except ValueError as exc:
            self._send_error(gateway.error_response(400, "validation_error", str(exc)))
            return
        self._send_json(200, {"token": token, "userId": user_id})

    def _static(self, path: str) -> None:
        file = resolve_static(self.site.web_dir, path)
        if file is None:
            self._send_error(gateway.error_response(404, "not_found", "No such file"))
            return
        suffix = file.suffix.lower()
        content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        self._send(200, {"Content-Type": content_type, "Cache-Control": "no-cache",
                         "X-Content-Type-Options": "nosniff"}, file.read_bytes())


def resolve_static(web_dir: Path, url_path: str) -> Path | None:
    """The file under `web_dir` for a URL path, or None (missing, hidden, or outside web_dir)."""
    rel = unquote(url_path)
    if "\x00" in rel or "\\" in rel:
        return None
    rel = rel.lstrip("/")
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    root = web_dir.resolve()
    candidate = (root / rel).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


class LocalHTTPServer(ThreadedHTTPServer):
    """chalice.local's threaded server with a real listen backlog (socketserver's default is 5:
    a page opening a dozen connections at once would see 1 s SYN retries)."""

    request_queue_size = 128


def _thread_local_requests(app: Chalice) -> None:
    """`app.current_request` per thread, as `chalice local` does (LocalChalice)."""
    if not isinstance(app, LocalChalice):
        app.__class__ = type("Local" + type(app).__name__, (LocalChalice, type(app)), {})


class LocalServer:
    """The Chalice app and the page on host:port, served from a background thread."""

    def __init__(self, app: Chalice, site: Site, host: str = "127.0.0.1", port: int = 8000,
                 config: Config | None = None) -> None:
        _thread_local_requests(app)
        config = config or chalice_config()
        self.dev_server = LocalDevServer(app, config, host, port, handler_cls=LocalRequestHandler,
                                         server_cls=LocalHTTPServer)
        httpd = self.dev_server.server
        httpd.local_gateway = LocalGateway(app, config)
        httpd.site = site
        self.host, self.port = host, httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "LocalServer":
        self._thread = threading.Thread(target=self.dev_server.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="http-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.dev_server.shutdown()  # stops accepting; in-flight requests finish on their threads
            self._thread.join(10)
            self._thread = None
        self.dev_server.server.server_close()
