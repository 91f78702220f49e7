"""`make check-provider`: which Inference Providers serve the configured models, said plainly.

    python -m infra.check_provider        exit 0: the configured path is served; 1: it is not; 2: the Hub
                                          could not be asked (no token, no network)

Asks the Hub `model_info(repo, expand=["inferenceProviderMapping"])` for FLUX_LORA (the default,
XLabs-AI/flux-RealismLora), FLUX_MODEL (black-forest-labs/FLUX.1-dev, the fallback) and SAFETY_MODEL,
and, when attribute suggestions are on (ATTRIBUTE_SUGGESTIONS=on), ATTRIBUTE_MODEL for
zero-shot-image-classification (or ATTRIBUTE_ENDPOINT_URL).
With FLUX_ENDPOINT_URL set, the image model is that endpoint and the Hub mapping does not matter.
HF_ENDPOINT points it at another Hub (tests use a fake one). The local stack runs it at start when
HF_TOKEN is set. It also names each configured model's licence (infra/model_licences.py), with a
WARNING where non-commercial weights are run on a dedicated endpoint.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

TEXT_TO_IMAGE = "text-to-image"
IMAGE_CLASSIFICATION = "image-classification"
ZERO_SHOT_IMAGE_CLASSIFICATION = "zero-shot-image-classification"


@dataclass
class Served:
    repo: str
    task: str
    live: list[str] = field(default_factory=list)      # providers serving it for the task
    other: list[str] = field(default_factory=list)     # mapped but staging/error or another task
    error: str | None = None


def served(api: Any, repo: str, task: str) -> Served:
    from huggingface_hub.errors import HfHubHTTPError

    result = Served(repo, task)
    try:
        info = api.model_info(repo, expand=["inferenceProviderMapping"])
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        result.error = f"the Hub answered HTTP {status}" if status else str(exc)[:200]
        return result
    for mapping in info.inference_provider_mapping or []:
        if mapping.status == "live" and mapping.task == task:
            result.live.append(mapping.provider)
        else:
            result.other.append(f"{mapping.provider} ({mapping.status}, {mapping.task})")
    return result


def report(settings: Any, api: Any) -> tuple[int, list[str]]:
    lines: list[str] = []
    ok = True
    if settings.flux_endpoint_url:
        lines.append(f"Images: FLUX_ENDPOINT_URL is set ({settings.flux_endpoint_url}): generations use that "
                     "dedicated endpoint; no Inference Provider is needed.")
    else:
        wanted = settings.flux_provider
        repos = [r for r in (settings.flux_lora, settings.flux_model) if r]
        results = [served(api, repo, TEXT_TO_IMAGE) for repo in repos]
        for r in results:
            lines.append(_line(r, wanted))
        first = results[0]
        if _usable(first, wanted):
            lines.append(f"OK: generations will use {first.repo}"
                         f" via {wanted or first.live[0]}.")
        elif len(results) > 1 and _usable(results[1], wanted):
            lines.append(f"WARNING: {first.repo} is not served{f' by {wanted}' if wanted else ''}; every "
                         f"generation falls back to {results[1].repo} (recorded as the generation's `model`). "
                         f"Set FLUX_LORA= (empty) to ask for the base model directly, or FLUX_ENDPOINT_URL.")
        else:
            ok = False
            lines.append("FAIL: no configured image model is served"
                         f"{f' by {wanted}' if wanted else ''}: every generation would fail. Set FLUX_PROVIDER to "
                         "a provider listed above, or FLUX_ENDPOINT_URL to a dedicated Inference Endpoint.")
    lines.extend(licence_lines(settings))
    if settings.safety_endpoint_url:
        lines.append(f"Safety: SAFETY_ENDPOINT_URL is set ({settings.safety_endpoint_url}).")
    else:
        safety = served(api, settings.safety_model, IMAGE_CLASSIFICATION)
        lines.append(_line(safety, settings.safety_provider).replace("Model ", "Safety model ", 1))
        if not _usable(safety, settings.safety_provider):
            ok = False
            lines.append("FAIL: the safety classifier is not served: no image would be published (fail closed). "
                         "Set SAFETY_ENDPOINT_URL, SAFETY_PROVIDER or SAFETY_MODEL.")
    ok = _attribute_lines(settings, api, lines) and ok
    return (0 if ok else 1), lines


def _attribute_lines(settings: Any, api: Any, lines: list[str]) -> bool:
    """Attribute suggestions on upload (chalicelib/avatars/suggestions.py): named always, checked when on."""
    from infra.model_licences import licence_line

    if str(getattr(settings, "attribute_suggestions", "off")).strip().lower() != "on":
        lines.append(f"Attributes: suggestions are off (ATTRIBUTE_SUGGESTIONS=on asks {settings.attribute_model}).")
        return True
    if settings.attribute_endpoint_url:
        lines.append(f"Attributes: ATTRIBUTE_ENDPOINT_URL is set ({settings.attribute_endpoint_url}).")
    else:
        result = served(api, settings.attribute_model, ZERO_SHOT_IMAGE_CLASSIFICATION)
        lines.append(_line(result, settings.attribute_provider).replace("Model ", "Attribute model ", 1))
        if not _usable(result, settings.attribute_provider):
            lines.append("FAIL: the attribute model is not served: every upload's suggestions would be "
                         "`unavailable` (uploads are not affected). Set ATTRIBUTE_ENDPOINT_URL, ATTRIBUTE_PROVIDER "
                         "or ATTRIBUTE_MODEL, or ATTRIBUTE_SUGGESTIONS=off.")
            lines.append(licence_line(settings.attribute_model, self_hosted=False))
            return False
    lines.append(licence_line(settings.attribute_model, self_hosted=bool(settings.attribute_endpoint_url)))
    return True


def licence_lines(settings: Any) -> list[str]:
    """The licence of every configured model (infra/model_licences.py): the weights a dedicated endpoint
    runs are ours to license, so those get a WARNING when their licence is non-commercial."""
    from infra.model_licences import licence_line

    lines = []
    models = [(settings.flux_lora, bool(settings.flux_endpoint_url)),
              (settings.flux_model, bool(settings.flux_endpoint_url)),
              (settings.flux_image_model,
               bool(getattr(settings, "flux_image_endpoint_url", None) or settings.flux_endpoint_url)),
              (settings.safety_model, bool(settings.safety_endpoint_url))]
    seen = set()
    for repo, self_hosted in models:
        if repo and repo not in seen:
            seen.add(repo)
            lines.append(licence_line(repo, self_hosted=self_hosted))
    return lines


def _usable(result: Served, wanted: str | None) -> bool:
    return bool(result.live) and (wanted in (None, "auto") or wanted in result.live)


def _line(result: Served, wanted: str | None) -> str:
    if result.error:
        return f"Model {result.repo}: could not be checked ({result.error})."
    if not result.live:
        extra = f"; mapped but not usable: {', '.join(result.other)}" if result.other else ""
        return f"Model {result.repo}: NOT served by any Inference Provider for {result.task}{extra}."
    note = "" if wanted in (None, "auto") or wanted in result.live else f" (not by FLUX_PROVIDER={wanted})"
    return f"Model {result.repo}: served for {result.task} by {', '.join(result.live)}{note}."


def main(argv: list[str] | None = None, out: Any = print) -> int:
    from huggingface_hub import HfApi

    from chalicelib.config import Settings

    settings = Settings.from_env()
    if not (settings.hf_token or os.environ.get("HF_TOKEN")):
        out("check-provider: HF_TOKEN is not set; nothing to check (the offline provider runs locally).")
        return 2
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=settings.hf_token)
    try:
        code, lines = report(settings, api)
    except Exception as exc:  # noqa: BLE001 — say it plainly, never a traceback
        out(f"check-provider: could not ask the Hub ({type(exc).__name__}: {str(exc)[:200]})")
        return 2
    for line in lines:
        out(line)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
