"""GET /health says which image provider generations use, so the page can say "generation is
offline on this stack" before anyone waits for a portrait."""
from __future__ import annotations

from chalicelib import dependencies
from tests.functional.conftest import PREFIX


def test_health_says_offline_when_no_provider_is_configured(client, monkeypatch):
    for key in ("HF_TOKEN", "HF_TOKEN_ARN", "FLUX_ENDPOINT_URL", "GENERATION_PROVIDER"):
        monkeypatch.delenv(key, raising=False)
    dependencies.reset()
    body = client.http.get(f"{PREFIX}/health").json_body
    assert body["status"] == "ok" and body["provider"] == "offline"


def test_health_says_whether_attribute_suggestions_run(client, monkeypatch):
    assert client.http.get(f"{PREFIX}/health").json_body["attributeSuggestions"] is False
    monkeypatch.setenv("ATTRIBUTE_SUGGESTIONS", "on")
    monkeypatch.setenv("ATTRIBUTE_ENDPOINT_URL", "http://127.0.0.1:9/models/clip")
    dependencies.reset()
    assert client.http.get(f"{PREFIX}/health").json_body["attributeSuggestions"] is True


def test_health_says_flux_when_the_hf_provider_is_chosen(client, monkeypatch):
    monkeypatch.setenv("GENERATION_PROVIDER", "hf")
    dependencies.reset()
    assert client.http.get(f"{PREFIX}/health").json_body["provider"] == "flux"
