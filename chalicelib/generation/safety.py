"""The safety check on generated images: an image classifier on the Hub (SAFETY_MODEL, default
Falconsai/nsfw_image_detection) or a dedicated endpoint (SAFETY_ENDPOINT_URL), called through
huggingface_hub's `InferenceClient.image_classification`.

    checker_for(settings) -> Checker
        .flagged(png_bytes) -> bool   True: withhold the image (an unsafe label scored >= SAFETY_THRESHOLD)
        .state                        "checked" | "unchecked"
        .refusal                      a ProviderError when no image may be published (fail closed)

Which classifier runs:
  - SAFETY_ENDPOINT_URL set → that endpoint;
  - else with an HF token → SAFETY_MODEL through Inference Providers (SAFETY_PROVIDER, or huggingface_hub's choice);
  - else, with the offline provider (local stack, CI) → no check, the generation records `safety: "unchecked"`;
  - else (a real image service and no classifier) → fail closed: every image is refused, errorCode
    `safety_unavailable`. Production never publishes an unchecked image.
Classifier errors are ProviderErrors classified like the image service's: 429, 5xx, timeouts and
connection errors retry the job with the same backoff; other 4xx fail it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import Settings

# Labels that mean "do not publish" across common NSFW classifiers (Falconsai: nsfw/normal;
# others: porn/hentai/sexy/neutral/drawings).
UNSAFE_LABELS = frozenset({"nsfw", "porn", "hentai", "sexy", "unsafe", "explicit", "nudity", "gore", "violence"})


class Checker:
    state = "checked"
    refusal: Any = None

    def __init__(self, settings: "Settings", token: str | None) -> None:
        self._settings = settings
        self._token = token
        self._client = None

    def _inference_client(self) -> Any:
        if self._client is None:
            from huggingface_hub import InferenceClient

            s = self._settings
            self._client = InferenceClient(
                model=s.safety_endpoint_url or s.safety_model, token=self._token, timeout=s.safety_timeout_seconds,
                provider=None if s.safety_endpoint_url else s.safety_provider)
        return self._client

    def scores(self, image: bytes) -> dict[str, float]:
        from chalicelib.generation.providers import classify

        try:
            result = self._inference_client().image_classification(image)
        except Exception as exc:  # noqa: BLE001 — classified like provider failures
            error = classify(exc)
            error.reason = error.reason.replace("The image service", "The safety classifier")
            error.code = {"provider_refused": "safety_refused", "provider_auth": "safety_refused",
                          "provider_error": "safety_refused"}.get(error.code, "safety_unavailable")
            raise error from exc
        return {str(item.label).lower(): float(item.score) for item in result}

    def flagged(self, image: bytes) -> bool:
        scores = self.scores(image)
        return any(score >= self._settings.safety_threshold for label, score in scores.items()
                   if label in UNSAFE_LABELS)


class Unchecked:
    """The offline provider's placeholders with no classifier configured: nothing to check."""
    state = "unchecked"
    refusal = None

    def flagged(self, image: bytes) -> bool:
        return False


class FailClosed(Unchecked):
    """A real image service and no classifier: no image is published."""
    state = "unchecked"

    def __init__(self) -> None:
        from chalicelib.generation.providers import ProviderError

        self.refusal = ProviderError("No safety classifier is configured (SAFETY_ENDPOINT_URL, or an HF token for "
                                     "SAFETY_MODEL): images are not published unchecked", retryable=False,
                                     code="safety_unavailable")


def checker_for(settings: "Settings") -> Checker | Unchecked:
    if settings.safety_endpoint_url:
        from chalicelib.aws.secrets import hf_token

        return Checker(settings, hf_token(settings) if (settings.hf_token or settings.hf_token_arn) else None)
    if settings.hf_token or settings.hf_token_arn:
        from chalicelib.aws.secrets import hf_token

        return Checker(settings, hf_token(settings))
    if settings.offline_generation:
        return Unchecked()
    return FailClosed()
