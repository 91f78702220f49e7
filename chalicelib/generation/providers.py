"""Image providers for generation: FLUX.1-dev (+ realism LoRA) through huggingface_hub, or an
offline renderer for machines without a token.

    get_provider(settings).generate(prompt=…, negative_prompt=…, width=…, height=…, seed=…) -> PNG bytes

Every failure is a ProviderError that says whether trying again can help (429, 5xx, timeouts,
connection errors) or not (refused prompt, other 4xx), and for how long the provider asked to wait.
huggingface_hub and Pillow are imported inside the calls: the API function never loads them.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import Settings

ERROR_MAX = 300


class ProviderError(Exception):
    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None,
                 status: int | None = None, code: str | None = None):
        super().__init__(reason)
        self.reason = reason[:ERROR_MAX]
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        # The stable errorCode a generation shows (docs/operations.md "Generation error codes").
        self.code = code or ("provider_unavailable" if retryable else "provider_refused")


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str
    width: int
    height: int
    seed: int
    label: str = ""  # what the offline placeholder writes on the picture


@dataclass(frozen=True)
class RestyleRequest(GenerationRequest):
    """Image-to-image: the source avatar's image and how far to move from it (0.1–1.0)."""
    image: bytes = b""
    strength: float = 0.6
    style: str = ""


class Provider(Protocol):
    name: str

    def generate(self, request: GenerationRequest) -> bytes: ...

    def restyle(self, request: RestyleRequest) -> bytes: ...


def _retry_after(headers) -> float | None:
    raw = (headers or {}).get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None  # an HTTP date: the configured backoff applies


def classify(exc: BaseException) -> ProviderError:
    """huggingface_hub / httpx exceptions → ProviderError (retryable or not)."""
    from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

    if isinstance(exc, InferenceTimeoutError):
        return ProviderError("The image service did not answer in time", retryable=True, code="provider_timeout")
    if isinstance(exc, StopIteration) or (isinstance(exc, ValueError) and _NOT_SERVED in str(exc)):
        # huggingface_hub found no Inference Provider for the model (an empty or unmatched mapping).
        return ProviderError(f"No Inference Provider serves this model ({str(exc)[:120] or 'no provider mapping'})",
                             retryable=False, code="model_not_served")
    if isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None:
        status = exc.response.status_code
        retry_after = _retry_after(exc.response.headers)
        if status == 429:
            return ProviderError("The image service is busy (rate limited)", retryable=True,
                                 retry_after=retry_after, status=status, code="provider_rate_limited")
        if status >= 500:
            return ProviderError(f"The image service is unavailable (HTTP {status})", retryable=True,
                                 retry_after=retry_after, status=status)
        detail = _server_message(exc)
        if status == 404:
            return ProviderError(f"The image model was not found (HTTP 404){detail}", retryable=False, status=status,
                                 code="model_not_served")
        if status in (401, 403):
            return ProviderError("The image service refused our credentials", retryable=False, status=status,
                                 code="provider_auth")
        return ProviderError(f"The image service refused the request (HTTP {status}){detail}", retryable=False,
                             status=status)
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):  # the client decodes the answer: not an image
        return ProviderError("The image service returned an unusable image: not an image", retryable=False,
                             code="unusable_image")
    # Transport errors (connection refused/reset, DNS) say nothing about the request itself.
    import httpx2

    if isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError)):
        return ProviderError("The image service could not be reached", retryable=True, code="provider_unreachable")
    return ProviderError(f"The image service failed: {type(exc).__name__}", retryable=False, code="provider_error")


_NOT_SERVED = "not supported by"  # huggingface_hub: "Model … is not supported by provider …"


def _server_message(exc) -> str:
    try:
        body = exc.response.json()
    except (ValueError, AttributeError):
        return ""
    message = body.get("error") if isinstance(body, dict) else None
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return f": {' '.join(str(message).split())[:200]}" if message else ""


class FluxProvider:
    """FLUX.1-dev with the realism LoRA. With FLUX_ENDPOINT_URL the model is that URL (a dedicated
    Inference Endpoint serving the LoRA-merged pipeline, or any server speaking the same API);
    otherwise the LoRA repository is called through Inference Providers (its base model is FLUX.1-dev).

    If no Inference Provider serves the LoRA ("model not served"), the image is asked of the base
    FLUX_MODEL once, and this container keeps using the base model from then on. `last_model` and
    `last_provider` say what made the last image (recorded on the generation)."""
    name = "flux"

    def __init__(self, settings: "Settings", token: str | None):
        self._settings = settings
        self._token = token
        self._clients: dict[str, object] = {}
        self._lora_not_served = False
        self.last_model: str | None = None
        self.last_provider: str | None = None

    def _inference_client(self, model: str | None = None):
        s = self._settings
        model = s.flux_endpoint_url or model or s.flux_lora or s.flux_model
        if model not in self._clients:
            from huggingface_hub import InferenceClient

            self._clients[model] = InferenceClient(model=model, token=self._token, timeout=s.flux_timeout_seconds,
                                                   provider=None if s.flux_endpoint_url else s.flux_provider)
        return self._clients[model]

    def _model(self) -> str:
        s = self._settings
        return s.flux_model if (self._lora_not_served or not s.flux_lora) else s.flux_lora

    def generate(self, request: GenerationRequest) -> bytes:
        s = self._settings
        model = self._model()
        try:
            return self._generate(model, request)
        except ProviderError as exc:
            if exc.code != "model_not_served" or s.flux_endpoint_url or model == s.flux_model:
                raise
            from chalicelib.observability import logger

            logger.warning("image model not served; falling back to the base model",
                           extra={"model": model, "fallback": s.flux_model, "reason": exc.reason})
            self._lora_not_served = True
            return self._generate(s.flux_model, request)

    def restyle(self, request: RestyleRequest) -> bytes:
        """FLUX_IMAGE_ENDPOINT_URL, else FLUX_ENDPOINT_URL, else FLUX_IMAGE_MODEL through Inference Providers."""
        s = self._settings
        endpoint = s.flux_image_endpoint_url or s.flux_endpoint_url
        model = endpoint or s.flux_image_model
        key = "image-to-image:" + model
        if key not in self._clients:
            from huggingface_hub import InferenceClient

            self._clients[key] = InferenceClient(model=model, token=self._token, timeout=s.flux_timeout_seconds,
                                                 provider=None if endpoint else s.flux_provider)
        try:
            image = self._clients[key].image_to_image(
                request.image, prompt=request.prompt, negative_prompt=request.negative_prompt or None,
                num_inference_steps=s.flux_steps, guidance_scale=s.flux_guidance,
                target_size={"width": request.width, "height": request.height}, strength=request.strength,
                seed=request.seed)
        except Exception as exc:  # noqa: BLE001
            raise classify(exc) from exc
        self.last_model = s.flux_image_model  # what an endpoint serves is its own business: the setting names it
        self.last_provider = "hf-endpoint" if endpoint else (s.flux_provider or "auto")
        out = io.BytesIO()
        image.save(out, "PNG")
        return out.getvalue()

    def _generate(self, model: str, request: GenerationRequest) -> bytes:
        s = self._settings
        try:
            image = self._inference_client(model).text_to_image(
                request.prompt, negative_prompt=request.negative_prompt, width=request.width,
                height=request.height, num_inference_steps=s.flux_steps, guidance_scale=s.flux_guidance,
                seed=request.seed)
        except Exception as exc:  # noqa: BLE001 — every failure is classified, none escapes unlabelled
            raise classify(exc) from exc
        self.last_model = (s.flux_lora or s.flux_model) if s.flux_endpoint_url else model
        self.last_provider = "hf-endpoint" if s.flux_endpoint_url else (s.flux_provider or "auto")
        out = io.BytesIO()
        image.save(out, "PNG")
        return out.getvalue()


class OfflineProvider:
    """A labelled placeholder portrait, so the whole flow runs without a token (local stack, CI).
    Deterministic per seed. Never chosen in production (Settings.offline_generation)."""
    name = "offline"
    last_model = "offline-placeholder"
    last_provider = "offline"

    def generate(self, request: GenerationRequest) -> bytes:
        import random

        from PIL import Image, ImageDraw

        rnd = random.Random(request.seed)
        w, h = request.width, request.height
        top = tuple(rnd.randint(40, 200) for _ in range(3))
        bottom = tuple(max(0, c - 60) for c in top)
        im = Image.new("RGB", (w, h), bottom)
        draw = ImageDraw.Draw(im)
        for y in range(0, h, 4):  # a vertical gradient backdrop
            t = y / h
            draw.rectangle((0, y, w, y + 4), fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
        skin = rnd.choice([(241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172)])
        cx, cy = w // 2, int(h * 0.42)
        draw.ellipse((cx - w * 0.33, h * 0.72, cx + w * 0.33, h * 1.2), fill=tuple(max(0, c - 90) for c in top))
        draw.rectangle((cx - w * 0.07, cy + h * 0.12, cx + w * 0.07, h * 0.78), fill=skin)
        draw.ellipse((cx - w * 0.17, cy - h * 0.17, cx + w * 0.17, cy + h * 0.17), fill=skin)
        for dx in (-0.06, 0.06):
            draw.ellipse((cx + w * dx - 6, cy - h * 0.03 - 5, cx + w * dx + 6, cy - h * 0.03 + 5), fill=(40, 30, 30))
        draw.arc((cx - w * 0.06, cy + h * 0.03, cx + w * 0.06, cy + h * 0.08), 20, 160, fill=(120, 50, 50), width=3)
        draw.rectangle((0, h - 44, w, h), fill=(0, 0, 0))
        label = f"OFFLINE PLACEHOLDER · seed {request.seed}"
        draw.text((10, h - 38), label, fill=(255, 255, 255))
        if request.label:
            draw.text((10, h - 20), request.label[:60], fill=(200, 200, 200))
        out = io.BytesIO()
        im.save(out, "PNG")
        return out.getvalue()

    def restyle(self, request: RestyleRequest) -> bytes:
        """The source image, tinted per seed, with a visible "RESTYLE PLACEHOLDER" band and the style."""
        import random

        from PIL import Image, ImageDraw, ImageOps

        rnd = random.Random(request.seed)
        with Image.open(io.BytesIO(request.image)) as source:
            im = ImageOps.fit(source.convert("RGB"), (request.width, request.height))
        tint = Image.new("RGB", im.size, tuple(rnd.randint(60, 220) for _ in range(3)))
        im = Image.blend(im, tint, min(0.8, 0.2 + 0.5 * request.strength))
        draw = ImageDraw.Draw(im)
        w, h = im.size
        draw.rectangle((0, 0, w, 48), fill=(120, 0, 160))
        draw.text((10, 8), f"RESTYLE PLACEHOLDER · strength {request.strength:.1f} · seed {request.seed}",
                  fill=(255, 255, 255))
        draw.text((10, 26), (request.style or request.prompt)[:60], fill=(230, 220, 255))
        out = io.BytesIO()
        im.save(out, "PNG")
        return out.getvalue()


def get_provider(settings: "Settings") -> Provider:
    if settings.offline_generation:
        return OfflineProvider()
    from chalicelib.aws.secrets import hf_token

    return FluxProvider(settings, hf_token(settings))
