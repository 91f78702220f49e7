"""A local server that speaks the Hugging Face inference HTTP API for zero-shot image classification,
as `InferenceClient.zero_shot_image_classification` calls it when ATTRIBUTE_ENDPOINT_URL points at a
dedicated endpoint:

    POST <url>  {"inputs": base64 image, "parameters": {"candidate_labels": [...], "hypothesis_template": "..."}}
    200 [{"label": phrase, "score": s}, ...] | 4xx/5xx {"error": "…"} (with Retry-After on 429/503)

Answers come from response files in tests/data/attribute-responses/ (the answer's shape: every
candidate phrase with a softmax score, best first). Only the phrases asked for are answered, their
scores renormalised over them, as CLIP's softmax over that subset would give.

Scripted: `FakeAttributes(["503", "portrait-glasses-beard"])` answers 503 once, then the recording; the
last entry repeats. Other entries: "429", "503", "500", "400", "slow" (sleeps past the client's timeout),
"garbage" (200 with a body that is not the answer's shape).
"""
from __future__ import annotations

import base64
import json
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.support.fake_server import FakeServer

RECORDINGS = Path(__file__).resolve().parents[1] / "data" / "attribute-responses"


def recording(name: str) -> list[dict]:
    return json.loads((RECORDINGS / f"{name}.json").read_text())


class FakeAttributes(FakeServer):
    def __init__(self, script: list[str] | None = None, *, slow_seconds: float = 3.0, retry_after: int = 1):
        self.script = list(script or ["portrait-glasses-beard"])
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.requests: list[dict] = []
        self._serve()

    @property
    def url(self) -> str:
        return f"{self.base_url}/models/clip-attributes"

    def _next(self) -> str:
        with self._lock:
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, payload, headers: dict | None = None) -> None:
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(raw or b"{}")
                params = payload.get("parameters") or {}
                labels = list(params.get("candidate_labels") or [])
                action = fake._next()
                with fake._lock:
                    fake.requests.append({"path": self.path, "labels": labels, "answer": action,
                                          "hypothesis_template": params.get("hypothesis_template"),
                                          "image_bytes": len(base64.b64decode(payload.get("inputs") or "")),
                                          "authorization": self.headers.get("Authorization")})
                if action == "slow":
                    time.sleep(fake.slow_seconds)
                    self._send(503, {"error": "late"})
                elif action == "garbage":
                    self._send(200, {"unexpected": True})
                elif action.isdigit():
                    message = {"429": "Rate limit reached", "503": "Model is currently loading"}.get(action, "Boom")
                    self._send(int(action), {"error": message},
                               {"Retry-After": str(fake.retry_after)} if action in ("429", "503") else None)
                else:
                    scores = {item["label"]: item["score"] for item in recording(action)}
                    total = sum(scores.get(label, 0.0) for label in labels) or 1.0
                    answer = [{"label": label, "score": round(scores.get(label, 0.0) / total, 6)} for label in labels]
                    self._send(200, sorted(answer, key=lambda item: -item["score"]))

        return Handler
