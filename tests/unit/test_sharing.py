"""Share links without AWS: the events their item changes map to (and their schemas), the token's
strength and what is kept of it, and the public page (escaping, no script, no ids)."""
from __future__ import annotations

import json
import re

import pytest

from chalicelib.aws.models import AttributesMap, AvatarModel, PersonaMap, ShareModel, avatar_pk
from chalicelib.events import mapping as events
from chalicelib.sharing import page, service as sharing, store
from tests.unit.test_event_mapping import record

SID = "shr_01m8vjv49rxnk06kjgh8jwha1c"
AID = "ava_01m8vjv49rxnk06kjgh8jwha1c"
PID = "prj_01m8vjv49rxnk06kjgh8jwha1c"


def share_image(**changes) -> dict:
    fields = dict(user_id="u1", share_id=SID, avatar_id=AID, project_id=PID, label="for Budi", fields=["attributes"],
                  token_hash="ab" * 32, token_hint="wxyz", now_iso="2026-12-01T10:00:00.000Z",
                  expires_iso="2026-12-31T10:00:00.000Z", ttl=1769853600)
    revoked = {k: changes.pop(k) for k in ("revoked_at", "revoked_reason") if k in changes}
    fields.update(changes)
    share = store.new_share(**fields)
    for key, value in revoked.items():
        setattr(share, key, value)
    return share.serialize()


def _schema(event_type: str) -> dict:
    from tests.support.infra import ROOT

    return json.loads((ROOT / "docs" / "schemas" / f"{event_type}.json").read_text())


def _valid(event: dict) -> list[str]:
    from jsonschema import Draft202012Validator

    return [e.message for e in Draft202012Validator(_schema(event["type"])).iter_errors(event)]


# ---- events ----------------------------------------------------------------------------------------

def test_a_new_share_announces_avatar_shared_without_its_token_or_hash():
    [event] = events.from_stream_record(record("INSERT", None, share_image()))
    assert event["type"] == "avatar.shared"
    assert event["data"]["id"] == SID and event["data"]["avatarId"] == AID and event["data"]["userId"] == "u1"
    text = json.dumps(event)
    assert "ab" * 32 not in text and "tokenHash" not in text
    assert _valid(event) == []


def test_revoking_announces_share_revoked_once():
    old, new = share_image(), share_image(revoked_at="2026-12-02T10:00:00.000Z", revoked_reason="owner")
    [event] = events.from_stream_record(record("MODIFY", old, new))
    assert event["type"] == "avatar.share_revoked" and event["data"]["revokedReason"] == "owner"
    assert _valid(event) == []
    assert events.from_stream_record(record("MODIFY", new, new, seq="101")) == []  # e.g. a TTL change


def test_a_working_share_removed_with_its_avatar_announces_share_revoked():
    # the record's time (approx 1764583200: 2025-12-01) is before the link's expiry
    [event] = events.from_stream_record(record("REMOVE", share_image(), None))
    assert event["type"] == "avatar.share_revoked" and event["data"]["revokedReason"] == "avatar_deleted"
    assert _valid(event) == []


def test_an_expired_or_revoked_share_leaving_by_ttl_says_nothing():
    expired = share_image(expires_iso="2026-11-01T10:00:00.000Z")
    assert events.from_stream_record(record("REMOVE", expired, None, approx=1796000000)) == []  # 2026-11-28
    revoked = share_image(revoked_at="2026-11-02T10:00:00.000Z", revoked_reason="owner")
    assert events.from_stream_record(record("REMOVE", revoked, None)) == []


def test_share_events_belong_to_their_owner():
    assert events.user_of(record("INSERT", None, share_image())) == "u1"


def test_webhooks_can_subscribe_to_share_events():
    from chalicelib.events import webhooks

    assert {"avatar.shared", "avatar.share_revoked"} <= set(webhooks.SUBSCRIBABLE)


# ---- token --------------------------------------------------------------------------------------

def test_tokens_carry_256_random_bits_and_only_their_hash_is_kept():
    token = __import__("secrets").token_urlsafe(sharing.TOKEN_BYTES)
    assert sharing.TOKEN_BYTES * 8 >= 128 and len(token) == 43
    assert sharing.hash_token(token) == __import__("hashlib").sha256(token.encode()).hexdigest()
    assert set(ShareModel.get_attributes()) & {"token"} == set()


@pytest.mark.parametrize("token", ["", "short", "a" * 42, "a" * 44, "a" * 42 + "/", "../../etc/passwd" + "a" * 27,
                                   "a" * 42 + "\u00e9", "<script>" + "a" * 35])
def test_malformed_tokens_are_not_found_without_a_read(token):
    from chalicelib.errors import NotFoundError

    with pytest.raises(NotFoundError):
        sharing.resolve(token)  # no AWS in unit tests: reaching the table would fail otherwise


def test_fields_are_normalized_in_page_order_and_default_to_attributes():
    assert sharing.normalize_fields(None) == ["attributes"]
    assert sharing.normalize_fields(["prompt", "name", "personaAge", "prompt"]) == ["personaAge", "prompt"]
    assert sharing.normalize_fields([]) == []


# ---- the page -------------------------------------------------------------------------------------

def _avatar(**changes) -> AvatarModel:
    fields = dict(id=AID, user_id="u1", project_id=PID, name="<b>Mia</b>", name_lower="mia", source_type="uploaded",
                  status="ready", image_key="images/u1/a.png", display_key="display/u1/a.webp",
                  persona=PersonaMap(name="Mia \"<img src=x onerror=alert(1)>\"", age=30,
                                     personality=["kind", "<i>bold</i>"], background="from 'Bandung' & more"),
                  attributes=AttributesMap(gender="female", hair_color="black"), prompt="secret prompt",
                  usage_count=42, created_at="2026-12-01T10:00:00.000Z", updated_at="2026-12-01T10:00:00.000Z",
                  gsi1pk="x", gsi1sk="y")
    fields.update(changes)
    return AvatarModel(avatar_pk("u1", AID), "META", **fields)


def _share(fields: list[str]) -> ShareModel:
    return ShareModel.from_raw_data(share_image(fields=fields))


def test_the_page_shows_the_chosen_fields_escaped_and_nothing_else():
    view = sharing.public_view(_share(["personaName", "personaPersonality", "personaBackground", "attributes"]),
                               _avatar())
    html = page.render_avatar(view, "https://bucket.s3.amazonaws.com/display/u1/a.webp?X-Amz-Signature=1&b=2")
    assert "<b>Mia</b>" not in html and "&lt;b&gt;Mia&lt;/b&gt;" in html
    assert "<img src=x" not in html and "<i>bold" not in html and "&amp; more" in html
    assert "secret prompt" not in html and "30" not in html  # not chosen
    assert "female" in html and "black" in html
    for leak in (AID, PID, SID, "u1/", "42", "usage"):
        assert leak not in html.replace("display/u1/a.webp", ""), leak
    assert "<script" not in html.lower() and "onerror=" not in html.replace("onerror=alert", "")
    assert '<meta name="robots" content="noindex' in html
    assert "&amp;b=2" in html  # the URL is attribute-escaped too


def test_the_prompt_only_when_chosen():
    assert ("prompt", "secret prompt") in sharing.public_view(_share(["prompt"]), _avatar())["fields"]
    assert sharing.public_view(_share([]), _avatar())["fields"] == []


def test_headers_forbid_scripts_indexing_caching_and_referrers():
    headers = page.headers("https://bucket.s3.amazonaws.com/k?sig=1")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # no script source: none allowed
    assert "img-src https://bucket.s3.amazonaws.com;" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Robots-Tag"].startswith("noindex") and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store" and headers["Content-Type"].startswith("text/html")
    assert "img-src 'none'" in page.headers()["Content-Security-Policy"]


def test_the_inline_style_is_allowed_by_its_hash_only():
    import base64
    import hashlib

    html = page.render_message(404)
    style = re.search(r"<style>(.*?)</style>", html).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.headers()["Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers()["Content-Security-Policy"]


def test_every_status_page_has_the_same_shape():
    shapes = {re.sub(r">[^<]*<", "><", page.render_message(s)) for s in (404, 410, 429, 500)}
    assert len(shapes) == 1


@pytest.mark.parametrize("header, override, expected", [
    ("id-ID,id;q=0.9,en;q=0.8", None, "id"), ("en-US,en;q=0.9,id;q=0.8", None, "en"),
    ("en;q=0.5, id;q=0.6", None, "id"), ("in", None, "id"), ("fr, de", None, "en"), (None, None, "en"),
    ("id;q=0", None, "en"), ("id;q=abc, en", None, "en"), ("en", "id", "id"), ("id", "xx", "id"),
])
def test_the_page_language_follows_accept_language_and_the_override(header, override, expected):
    assert page.language(header, override) == expected


def test_any_accept_language_header_gives_a_known_language():
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=2000), st.one_of(st.none(), st.text(max_size=5)))
    def check(header, override):
        assert page.language(header, override) in page.LANGUAGES

    check()


def test_both_languages_name_every_field_and_every_message():
    assert page.LABELS["en"].keys() == page.LABELS["id"].keys()
    assert page.MESSAGES["en"].keys() == page.MESSAGES["id"].keys()
    html = page.render_message(410, "id")
    assert '<html lang="id">' in html and "Tautan sudah tidak tersedia" in html
