"""Attribute suggestions on the avatar view (issue 30): on a stack of its own with suggestions on and a
fake zero-shot endpoint (tests/support/fake_attributes.py), a person asks for the person attributes on
upload, accepts one suggestion, sees it among the avatar's attributes, and dismisses the rest."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import DESKTOP, create_project, sign_in, uploaded_avatar, watch_errors
from tests.support.fake_attributes import FakeAttributes


@pytest.fixture(scope="module")
def suggesting_stack(tmp_path_factory):
    from tests.support.local_stack import LocalStack

    with FakeAttributes(["portrait-glasses-beard"]) as fake:
        stack = LocalStack(tmp_path_factory.mktemp("suggestions"), env={
            "ATTRIBUTE_SUGGESTIONS": "on", "ATTRIBUTE_ENDPOINT_URL": fake.url}).start()
        try:
            yield stack
        finally:
            stack.stop()


def suggestions_ready(stack, user: str, avatar_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        avatar = stack.request("GET", f"/api/apps/avatar-creator/avatars/{avatar_id}",
                               token=stack.token(user)).json()
        if avatar.get("suggestionStatus") != "pending" or time.monotonic() > deadline:
            return avatar
        time.sleep(0.2)


def test_a_suggestion_is_accepted_from_the_avatar_view_and_the_rest_dismissed(browser, suggesting_stack, user, tmp_path):
    context = browser.new_context(viewport=DESKTOP, base_url=suggesting_stack.outputs["ApiUrl"])
    context.set_default_timeout(15_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        watch_errors(page, errors)
        sign_in(page, user)
        create_project(page, "Suggested")
        # The person opt-in is offered here (GET /health says suggestions run) and sent with the upload.
        page.check("#suggest-person")
        with page.expect_request(lambda r: r.url.endswith("/avatars/uploads")) as asked:
            card = uploaded_avatar(page, tmp_path, "rani")
        assert asked.value.post_data_json["files"][0]["suggest"] == ["gender", "ageRange"]
        avatar_id = card.get_attribute("data-avatar-id")
        assert suggestions_ready(suggesting_stack, user, avatar_id)["suggestionStatus"] == "ready"

        card.locator("button.thumb").click()
        panel = page.locator("#suggestions")
        expect(panel).to_be_visible()
        # The visual ones above the threshold, and the two person attributes asked for.
        expect(panel.locator(".suggestion")).to_have_count(9)
        expect(panel.locator('[data-attribute="gender"]')).to_contain_text("Male")
        expect(panel.locator('[data-attribute="glasses"]')).to_contain_text("Glasses: Glasses")
        assert_accessible(page, "the avatar view with suggestions")

        with page.expect_request(lambda r: r.url.endswith(f"/avatars/{avatar_id}/suggestions/accept")) as sent:
            panel.locator('[data-accept="glasses"]').click()
        assert sent.value.post_data_json == {"attributes": ["glasses"]}
        expect(panel.locator(".suggestion")).to_have_count(8)
        expect(page.locator(".facts .fact", has_text="Glasses")).to_contain_text("Glasses")

        page.click("#dismiss-suggestions")
        expect(page.locator("#suggestions")).to_have_count(0)
        after = suggesting_stack.request("GET", f"/api/apps/avatar-creator/avatars/{avatar_id}",
                                         token=suggesting_stack.token(user)).json()
        assert after["glasses"] == "glasses" and after["suggestions"] == {} and after["facialHair"] is None
        assert after["gender"] is None  # dismissed: never the avatar's
    finally:
        context.close()
    assert not errors, errors


def test_where_suggestions_do_not_run_the_page_offers_no_opt_in(page, user):
    sign_in(page, user)
    create_project(page, "Plain")
    expect(page.locator("#upload-button")).to_be_visible()
    expect(page.locator("#suggest-person")).to_have_count(0)
