"""The part every fake of an external HTTP API shares (fake_flux, fake_attributes): a threaded server
on a free local port, run in a daemon thread while the fake is entered. A subclass sets its state,
calls `_serve()` and gives `_handler()`, a BaseHTTPRequestHandler class."""
from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any


class FakeServer:
    def _serve(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> Any:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
