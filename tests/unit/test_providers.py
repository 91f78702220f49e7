"""Providers: error classification of the real huggingface_hub client, backoff, the offline renderer."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from chalicelib.config import Settings
from chalicelib.generation.worker import backoff_delay
from chalicelib.generation.providers import FluxProvider, GenerationRequest, OfflineProvider, ProviderError, get_provider
from tests.support.fake_flux import FakeFlux

REQUEST = GenerationRequest(prompt="a face", negative_prompt="cartoon", width=256, height=320, seed=7, label="Ana")


def flux(url: str, timeout: float = 1.0) -> FluxProvider:
    return FluxProvider(Settings(flux_endpoint_url=url, flux_timeout_seconds=timeout), "hf_token")


@pytest.mark.parametrize("answer, retryable, status", [
    ("429", True, 429), ("503", True, 503), ("500", True, 500), ("400", False, 400),
])
def test_http_errors_are_classified(answer, retryable, status):
    with FakeFlux([answer], retry_after=7) as fake:
        with pytest.raises(ProviderError) as caught:
            flux(fake.url).generate(REQUEST)
    assert (caught.value.retryable, caught.value.status) == (retryable, status)
    if answer in ("429", "503"):
        assert caught.value.retry_after == 7


def test_timeout_and_unreachable_server_are_retryable():
    with FakeFlux(["slow"], slow_seconds=1.5) as fake:
        with pytest.raises(ProviderError) as caught:
            flux(fake.url, timeout=0.3).generate(REQUEST)
    assert caught.value.retryable and "in time" in caught.value.reason
    with pytest.raises(ProviderError) as caught:
        flux("http://127.0.0.1:9/nothing-listens-here").generate(REQUEST)
    assert caught.value.retryable


def test_success_returns_png_of_the_requested_size():
    with FakeFlux(["ok"]) as fake:
        data = flux(fake.url).generate(REQUEST)
    assert Image.open(io.BytesIO(data)).size == (256, 320)


def test_offline_placeholder_is_deterministic_per_seed():
    provider = OfflineProvider()
    a, b = provider.generate(REQUEST), provider.generate(REQUEST)
    other = provider.generate(GenerationRequest(**{**REQUEST.__dict__, "seed": 8}))
    assert a == b and a != other
    assert Image.open(io.BytesIO(a)).size == (256, 320)


@pytest.mark.parametrize("stage, token, endpoint, choice, expected", [
    ("local", None, None, "auto", OfflineProvider),
    ("local", "hf_x", None, "auto", FluxProvider),
    ("local", None, "http://x", "auto", FluxProvider),
    ("prod", None, None, "auto", FluxProvider),      # never silently offline in production
    ("prod", None, None, "offline", OfflineProvider),  # only when chosen
    ("local", None, None, "hf", FluxProvider),
])
def test_provider_choice(stage, token, endpoint, choice, expected):
    settings = Settings(stage=stage, hf_token=token, flux_endpoint_url=endpoint, generation_provider=choice)
    assert isinstance(get_provider(settings), expected)


def test_backoff_grows_per_attempt_and_honours_retry_after():
    settings = Settings(generation_backoff_seconds=(10.0, 100.0, 1000.0))
    assert [backoff_delay(settings, n) for n in (1, 2, 3, 4)] == [10, 100, 1000, 1000]
    assert backoff_delay(settings, 1, retry_after=42.5) == 43
    assert backoff_delay(Settings(generation_backoff_seconds=(1e9,)), 1) == 43_200
