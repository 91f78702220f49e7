"""`make check-provider` and the run-time fallback to the base model, with the real huggingface_hub
client against a fake Hub (tests/support/fake_flux.py serves /api/models/… and the providers' router)."""
from __future__ import annotations

import pytest

from chalicelib.config import Settings
from chalicelib.generation.providers import FluxProvider, GenerationRequest, ProviderError
from infra import check_provider
from tests.support.fake_flux import FakeFlux

LORA, BASE, SAFETY = "XLabs-AI/flux-RealismLora", "black-forest-labs/FLUX.1-dev", "Falconsai/nsfw_image_detection"
LIVE_T2I = {"status": "live", "task": "text-to-image"}
REQUEST = GenerationRequest(prompt="a face", negative_prompt="", width=256, height=256, seed=3)


def mapping(provider: str, repo: str, **extra) -> dict:
    return {provider: {**LIVE_T2I, "providerId": repo, **extra}}


@pytest.fixture
def hub():
    with FakeFlux(["ok"]) as fake:
        fake.hub = {SAFETY: {"hf-inference": {"status": "live", "task": "image-classification", "providerId": SAFETY}}}
        yield fake


def run(hub, monkeypatch, **env) -> tuple[int, list[str]]:
    for key in ("FLUX_ENDPOINT_URL", "FLUX_PROVIDER", "SAFETY_ENDPOINT_URL", "FLUX_LORA"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ENDPOINT", hub.hub_url)
    # huggingface_hub fetches its agent-harness registry from HF_ENDPOINT once per process (and day):
    # whichever test runs first in a process (xdist decides) would see that request in its log.
    # Start every run with the registry already loaded (empty, as when the Hub is unreachable).
    monkeypatch.setattr("huggingface_hub.utils._detect_agent._registry", {"standardEnvVars": [], "harnesses": {}})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    lines: list[str] = []
    return check_provider.main([], out=lines.append), lines


def test_a_lora_served_by_a_provider_is_reported_ok(hub, monkeypatch):
    hub.hub.update({LORA: mapping("fal-ai", "fal-ai/flux-lora", adapter="lora"), BASE: mapping("fal-ai", "x")})
    code, lines = run(hub, monkeypatch)
    assert code == 0
    assert f"Model {LORA}: served for text-to-image by fal-ai." in lines
    assert any(line.startswith("OK: generations will use " + LORA) for line in lines)
    assert any(r.startswith(f"/api/models/{LORA}") and "inferenceProviderMapping" in r for r in hub.hub_requests)


def test_a_lora_no_provider_serves_is_said_plainly_with_the_fallback(hub, monkeypatch):
    hub.hub.update({LORA: {}, BASE: mapping("hf-inference", BASE)})
    code, lines = run(hub, monkeypatch)
    assert code == 0
    assert f"Model {LORA}: NOT served by any Inference Provider for text-to-image." in lines
    assert any(line.startswith("WARNING:") and f"falls back to {BASE}" in line for line in lines)


def test_nothing_served_is_a_failure(hub, monkeypatch):
    hub.hub.update({LORA: {"fal-ai": {"status": "staging", "task": "text-to-image", "providerId": "x"}}})
    code, lines = run(hub, monkeypatch)
    assert code == 1
    assert any("mapped but not usable: fal-ai (staging, text-to-image)" in line for line in lines)
    assert any(f"Model {BASE}: could not be checked (the Hub answered HTTP 404)" in line for line in lines)
    assert any(line.startswith("FAIL: no configured image model is served") for line in lines)


def test_a_chosen_provider_that_does_not_serve_the_model_fails(hub, monkeypatch):
    hub.hub.update({LORA: mapping("fal-ai", "x"), BASE: mapping("fal-ai", "x")})
    code, lines = run(hub, monkeypatch, FLUX_PROVIDER="replicate")
    assert code == 1 and any("(not by FLUX_PROVIDER=replicate)" in line for line in lines)


def test_with_a_dedicated_endpoint_only_the_safety_model_is_asked(hub, monkeypatch):
    code, lines = run(hub, monkeypatch, FLUX_ENDPOINT_URL="https://example.invalid/flux")
    assert code == 0 and "dedicated endpoint" in lines[0]
    assert [r.split("?")[0] for r in hub.hub_requests] == [f"/api/models/{SAFETY}"]


def test_without_a_token_nothing_is_asked(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    lines: list[str] = []
    assert check_provider.main([], out=lines.append) == 2 and "HF_TOKEN is not set" in lines[0]


# ---- at run time -------------------------------------------------------------------------------

@pytest.fixture
def routed(hub, monkeypatch):
    """The real InferenceClient asks the fake Hub for provider mappings and calls the fake router."""
    from huggingface_hub import constants
    from huggingface_hub.inference._providers import _common

    monkeypatch.setattr(constants, "ENDPOINT", hub.hub_url)
    monkeypatch.setattr(constants, "INFERENCE_PROXY_TEMPLATE", hub.router_template)
    from huggingface_hub.inference._providers import PROVIDERS

    for helper in PROVIDERS["hf-inference"].values():  # its base URL was fixed at import
        monkeypatch.setattr(helper, "base_url", hub.router_template.format(provider="hf-inference"))
    _common._fetch_inference_provider_mapping.cache_clear()
    yield hub
    _common._fetch_inference_provider_mapping.cache_clear()


def test_a_lora_not_served_falls_back_to_the_base_model_once_and_says_which(routed):
    routed.hub.update({LORA: {}, BASE: mapping("hf-inference", BASE)})
    provider = FluxProvider(Settings(flux_lora=LORA, flux_model=BASE), "hf_test")
    png = provider.generate(REQUEST)
    assert png.startswith(b"\x89PNG")
    assert (provider.last_model, provider.last_provider) == (BASE, "auto")
    [call] = routed.requests
    assert call["path"].startswith("/router/hf-inference/models/" + BASE)
    provider.generate(REQUEST)  # the container remembers: no second try of the LoRA
    assert sum(1 for r in routed.hub_requests if r.startswith(f"/api/models/{LORA}")) == 1


def test_when_the_base_model_is_not_served_either_the_job_fails_coded(routed):
    routed.hub.update({LORA: {}, BASE: {}})
    with pytest.raises(ProviderError) as caught:
        FluxProvider(Settings(flux_lora=LORA, flux_model=BASE), "hf_test").generate(REQUEST)
    assert (caught.value.code, caught.value.retryable) == ("model_not_served", False)


# ---- issue 32: the licence of each configured model -----------------------------------------------------

def test_every_configured_model_is_named_with_its_licence(hub, monkeypatch):
    hub.hub.update({LORA: mapping("fal-ai", "fal-ai/flux-lora", adapter="lora"), BASE: mapping("fal-ai", "x")})
    _, lines = run(hub, monkeypatch)
    licences = [line for line in lines if line.startswith("Licence of ")]
    assert [line.split(":")[0] for line in licences] == [
        f"Licence of {LORA}", f"Licence of {BASE}", "Licence of black-forest-labs/FLUX.1-Kontext-dev",
        f"Licence of {SAFETY}"]
    bfl = next(line for line in licences if BASE in line)
    assert "FLUX.1 [dev] Non-Commercial License" in bfl and "LICENSE.md" in bfl
    assert "outputs may be used commercially" in bfl and "commercial licence" in bfl
    assert "Apache-2.0" in licences[-1]
    assert not any("WARNING" in line and "licence" in line for line in lines)  # served by providers


def test_non_commercial_weights_on_a_dedicated_endpoint_are_a_warning(hub, monkeypatch):
    code, lines = run(hub, monkeypatch, FLUX_ENDPOINT_URL="https://example.invalid/flux")
    assert code == 0  # a warning, not a failure: a commercial licence may have been bought
    warned = [line for line in lines if line.startswith("WARNING: Licence of ")]
    assert any(BASE in line and "BFL's commercial licence" in line for line in warned)


def test_a_model_missing_from_the_table_is_said_plainly(hub, monkeypatch):
    hub.hub.update({"someone/other-model": mapping("fal-ai", "x")})
    _, lines = run(hub, monkeypatch, FLUX_LORA="someone/other-model", FLUX_ENDPOINT_URL="https://example.invalid/f")
    assert any("Licence of someone/other-model: not in infra/model_licences.py" in line for line in lines)


# ---- issue 30: the attribute suggestion model --------------------------------------------------------

CLIP = "openai/clip-vit-large-patch14"


def test_the_attribute_model_is_named_when_suggestions_are_off(hub, monkeypatch):
    hub.hub.update({LORA: mapping("fal-ai", "fal-ai/flux-lora", adapter="lora"), BASE: mapping("fal-ai", "x")})
    code, lines = run(hub, monkeypatch)
    assert code == 0
    assert f"Attributes: suggestions are off (ATTRIBUTE_SUGGESTIONS=on asks {CLIP})." in lines
    assert not any(r.startswith(f"/api/models/{CLIP}") for r in hub.hub_requests)  # not asked


def test_the_attribute_model_is_checked_for_zero_shot_with_its_licence_when_on(hub, monkeypatch):
    hub.hub.update({LORA: mapping("fal-ai", "fal-ai/flux-lora", adapter="lora"), BASE: mapping("fal-ai", "x"),
                    CLIP: {"hf-inference": {"status": "live", "task": "zero-shot-image-classification",
                                            "providerId": CLIP}}})
    code, lines = run(hub, monkeypatch, ATTRIBUTE_SUGGESTIONS="on")
    assert code == 0
    assert f"Attribute model {CLIP}: served for zero-shot-image-classification by hf-inference." in lines
    [licence] = [line for line in lines if f"Licence of {CLIP}" in line]
    assert licence.startswith("WARNING: ") and "MIT" in licence and "out of scope" in licence


def test_an_attribute_model_nobody_serves_fails_the_check_when_on(hub, monkeypatch):
    hub.hub.update({LORA: mapping("fal-ai", "fal-ai/flux-lora", adapter="lora"), BASE: mapping("fal-ai", "x")})
    code, lines = run(hub, monkeypatch, ATTRIBUTE_SUGGESTIONS="on")
    assert code == 1
    assert any(line.startswith("FAIL: the attribute model is not served") for line in lines)
    code, lines = run(hub, monkeypatch, ATTRIBUTE_SUGGESTIONS="on", ATTRIBUTE_ENDPOINT_URL="https://example.invalid/clip")
    assert code == 0 and "Attributes: ATTRIBUTE_ENDPOINT_URL is set (https://example.invalid/clip)." in lines
