"""A local server that speaks the Hugging Face inference HTTP API for text-to-image, as the real
`InferenceClient` calls it when FLUX_ENDPOINT_URL points at a dedicated endpoint:

    POST <url>   {"inputs": prompt, "parameters": {negative_prompt, width, height, seed, …}}
    POST <url>   {"inputs": base64 image, "parameters": {prompt, target_size, strength, seed, …}} (image-to-image)
    200 image/png bytes | 4xx/5xx {"error": "…"} (with Retry-After on 429/503)

Scripted: `FakeFlux(["503", "503", "ok"])` answers 503 twice then an image; the last entry repeats.
Entries: "ok", "late-ok" (an image after `slow_seconds`: a long job), "429", "503", "500", "400",
"slow" (sleeps past the client's timeout), "garbage"
(200 with bytes that are not an image), "unsafe-ok" (an image the fake classifier flags).

It also serves an image classifier (SAFETY_ENDPOINT_URL = `fake.safety_url`), as
`InferenceClient.image_classification` calls it: the image's raw bytes are POSTed, the answer is
`[{"label": "nsfw", "score": s}, {"label": "normal", "score": 1 - s}]`. It scores 0.97 for the
images "unsafe-ok" makes (pure red) and 0.02 otherwise; `safety_script` scripts errors the same way
("auto" classifies; "429", "503", "400", "slow").
"""
from __future__ import annotations

import io
import json
import time
from http.server import BaseHTTPRequestHandler

from PIL import Image

from tests.support.fake_server import FakeServer


class FakeFlux(FakeServer):
    UNSAFE_COLOUR = (255, 0, 0)

    def __init__(self, script: list[str] | None = None, *, slow_seconds: float = 3.0, retry_after: int = 1,
                 safety_script: list[str] | None = None):
        self.script = list(script or ["ok"])
        self.safety_script = list(safety_script or ["auto"])
        self.safety_requests: list[dict] = []
        # A fake Hub too (HF_ENDPOINT / huggingface_hub.constants.ENDPOINT = fake.hub_url): GET
        # /api/models/<repo> answers {"id", "inferenceProviderMapping": hub[repo]}; a repo not in it is 404.
        # Inference Providers' router (constants.INFERENCE_PROXY_TEMPLATE = fake.router_template) lands on
        # the image handler above.
        self.hub: dict[str, dict] = {}
        self.hub_requests: list[str] = []
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.requests: list[dict] = []
        self._serve()

    @property
    def url(self) -> str:
        return f"{self.base_url}/models/flux-realism"

    @property
    def hub_url(self) -> str:
        return self.base_url

    @property
    def router_template(self) -> str:
        return self.hub_url + "/router/{provider}"

    @property
    def safety_url(self) -> str:
        return f"{self.base_url}/models/nsfw-classifier"

    def _next(self, script: list[str] | None = None) -> str:
        script = self.script if script is None else script
        with self._lock:
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _classify(self, raw: bytes) -> None:
                action = fake._next(fake.safety_script)
                with fake._lock:
                    fake.safety_requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                                 "bytes": len(raw), "png": raw[:8] == b"\x89PNG\r\n\x1a\n",
                                                 "answer": action,
                                                 "authorization": self.headers.get("Authorization")})
                if action == "slow":
                    time.sleep(fake.slow_seconds)
                    action = "503"
                if action != "auto":
                    self._send(int(action), json.dumps({"error": "classifier says " + action}).encode(),
                               "application/json", {"Retry-After": str(fake.retry_after)})
                    return
                with Image.open(io.BytesIO(raw)) as im:
                    pixel = im.convert("RGB").getpixel((im.width // 2, im.height // 2))
                score = 0.97 if pixel == fake.UNSAFE_COLOUR else 0.02
                self._send(200, json.dumps([{"label": "nsfw", "score": score},
                                            {"label": "normal", "score": round(1 - score, 4)}]).encode(),
                           "application/json")

            def do_GET(self) -> None:
                from urllib.parse import unquote, urlsplit

                path = unquote(urlsplit(self.path).path)
                with fake._lock:
                    fake.hub_requests.append(self.path)
                repo = path[len("/api/models/"):] if path.startswith("/api/models/") else None
                if repo is None or repo not in fake.hub:
                    self._send(404, json.dumps({"error": "Repository not found"}).encode(), "application/json",
                               {"X-Error-Code": "RepoNotFound"})
                    return
                tasks = [m.get("task") for m in fake.hub[repo].values()]
                self._send(200, json.dumps({"id": repo, "_id": repo, "modelId": repo,
                                            "pipeline_tag": tasks[0] if tasks else None,
                                            "inferenceProviderMapping": fake.hub[repo]}).encode(), "application/json")

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/models/nsfw-classifier"):
                    self._classify(raw)
                    return
                payload = json.loads(raw or b"{}")
                action = fake._next()
                with fake._lock:
                    fake.requests.append({"path": self.path, "json": payload, "answer": action,
                                          "authorization": self.headers.get("Authorization")})
                error = {"Retry-After": str(fake.retry_after)}
                if action == "late-ok":
                    time.sleep(fake.slow_seconds)
                    action = "ok"
                if action in ("ok", "unsafe-ok"):
                    params = payload.get("parameters") or {}
                    size = params.get("target_size") or {}  # image-to-image asks for its size so
                    w = int(params.get("width") or size.get("width") or 512)
                    h = int(params.get("height") or size.get("height") or 512)
                    out = io.BytesIO()
                    colour = fake.UNSAFE_COLOUR if action == "unsafe-ok" else (90, 120, 160)
                    Image.new("RGB", (w, h), colour).save(out, "PNG")
                    self._send(200, out.getvalue(), "image/png")
                elif action == "slow":
                    time.sleep(fake.slow_seconds)
                    self._send(503, b'{"error":"late"}', "application/json")
                elif action == "garbage":
                    self._send(200, b"not an image at all", "image/png")
                elif action == "400":
                    self._send(400, json.dumps({"error": "Prompt refused by the safety checker"}).encode(),
                               "application/json")
                else:
                    message = {"429": "Rate limit reached", "503": "Model is currently loading"}.get(action, "Boom")
                    self._send(int(action), json.dumps({"error": message}).encode(), "application/json",
                               error if action in ("429", "503") else None)

        return Handler
