"""Restyle from the avatar dialog, several images per job, and a prompt the content policy refuses
(issue 19), on the local stack's offline provider."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import DESKTOP, PHONE, create_project, sign_in, uploaded_avatar
from tests.e2e.test_views import no_sideways_scroll
from tests.support.browser import screenshot


def _open_restyle(page, card):
    card.locator("button.thumb").click()
    page.click("#restyle-avatar")
    expect(page.locator("#restyle-form")).to_be_visible()


def test_restyle_from_the_dialog_makes_a_new_avatar_labelled_restyled_from_its_source(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Restyles")
    source = uploaded_avatar(page, tmp_path)
    _open_restyle(page, source)
    watercolor = page.get_by_role("button", name="Watercolor")
    watercolor.click()
    expect(watercolor).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#restyle-prompt")).to_have_value(re.compile("watercolor"))
    page.get_by_role("button", name="Anime").click()  # one style at a time: the last chip wins
    expect(watercolor).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#restyle-prompt")).to_have_value(re.compile("anime"))
    expect(page.locator("#restyle-strength")).to_have_value("0.6")
    page.locator("#restyle-strength").fill("0.8")
    expect(page.locator("#restyle-strength-value")).to_have_text("0.8")
    screenshot(page, "20-restyle-form")
    with page.expect_request(re.compile(r"/avatars/[^/]+/restyle$")) as sent:
        page.click("#start-restyle")
    body = sent.value.post_data_json
    assert body["style"] == "anime" and body["strength"] == 0.8 and body["numImages"] == 1
    restyled = page.locator('.avatar-card[data-status="ready"][data-source="image_to_image"]')
    expect(restyled).to_have_count(1, timeout=30_000)
    expect(restyled.locator(".badge.restyled")).to_have_text("Restyled")
    expect(restyled.locator("h3")).to_contain_text("maya · restyled")
    expect(page.locator(".avatar-card[data-status='ready']")).to_have_count(2)  # the source stays
    expect(page.locator(".job")).to_have_count(0)
    restyled.locator("button.thumb").click()
    expect(page.locator("#avatar-source")).to_contain_text("Restyled from “maya”")
    # The offline provider draws a visible restyle placeholder, labelled as such.
    expect(page.locator("#offline-caption")).to_contain_text("Offline placeholder")


def test_two_images_in_the_generate_form_make_two_avatars(page, user):
    sign_in(page, user)
    create_project(page, "Pairs")
    page.click("#generate-button")
    page.fill("#gen-prompt", "friendly nurse in a bright clinic")
    page.fill("#gen-name", "Fitri")
    page.select_option("#gen-count", "2")
    with page.expect_request(re.compile(r"/avatars/generate$")) as sent:
        page.click("#start-generation")
    assert sent.value.post_data_json["numImages"] == 2
    ready = page.locator('.avatar-card[data-status="ready"]')
    expect(ready).to_have_count(2, timeout=30_000)
    expect(ready.locator("h3")).to_contain_text(["Fitri", "Fitri"])
    expect(page.locator("#avatar-count")).to_have_text("2 avatars")
    expect(page.locator(".job")).to_have_count(0)


def test_a_refused_restyle_prompt_is_said_inside_the_open_dialog_and_starts_nothing(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Refused")
    source = uploaded_avatar(page, tmp_path)
    _open_restyle(page, source)
    page.fill("#restyle-prompt", "nazi officer portrait")
    with page.expect_response(re.compile(r"/restyle$")) as answer:
        page.click("#start-restyle")
    assert answer.value.status == 400
    error = page.locator("#dialog #dialog-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("hate symbols and extremist imagery are not allowed")  # the API's sentence
    expect(error).to_contain_text("reword it")
    expect(error).not_to_contain_text("docs/")
    expect(page.locator("#restyle-form")).to_be_visible()  # the dialog stays open, the prompt kept
    expect(page.locator("#restyle-prompt")).to_have_value("nazi officer portrait")
    expect(page.locator("#start-restyle")).to_be_enabled()
    expect(page.locator(".job")).to_have_count(0)


@pytest.mark.parametrize("viewport, scheme", [(DESKTOP, "light"), (PHONE, "light"), (DESKTOP, "dark")])
def test_the_restyle_form_has_no_serious_accessibility_violation(new_page, user, tmp_path, viewport, scheme):
    page = new_page(viewport, color_scheme=scheme)
    sign_in(page, user)
    create_project(page, "Accessible")
    _open_restyle(page, uploaded_avatar(page, tmp_path))
    page.get_by_role("button", name="Cinematic").click()
    expect(page.get_by_role("group", name="Style")).to_be_visible()
    where = f"the restyle form ({scheme}, {viewport['width']} px)"
    assert_accessible(page, where)
    no_sideways_scroll(page, where)
    screenshot(page, f"view-restyle-{scheme}-{viewport['width']}")
