"""The Share panel (issue 29) on the local stack: make a link, open it signed out (the picture loads
under the page's CSP, no script runs), revoke it, and the page answers 410."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import create_project, sign_in, uploaded_avatar


def test_a_link_made_in_the_dialog_opens_signed_out_then_revoking_it_ends_it(new_page, user, tmp_path):
    page = new_page()
    sign_in(page, user)
    create_project(page, "Share me")
    card = uploaded_avatar(page, tmp_path, name="sari")
    card.locator("button.thumb").click()
    page.locator("#share-panel > summary").click()
    expect(page.locator("#share-list")).to_contain_text("No links yet")
    page.select_option("#share-expiry", "7")
    page.fill("#share-label", "For Budi <b>")
    page.click("#share-create")
    url = page.locator("#share-url").input_value()
    assert "/s/" in url and len(url.rsplit("/", 1)[1]) == 43
    expect(page.locator(".share-row")).to_have_count(1)
    expect(page.locator(".share-row")).to_contain_text("For Budi <b>")

    visitor = new_page()  # a context of its own: not signed in
    response = visitor.goto(url)
    assert response.status == 200
    assert response.headers["x-robots-tag"].startswith("noindex")
    expect(visitor.locator("h1")).to_have_text("sari")
    image = visitor.locator("main img")
    expect(image).to_have_count(1)
    visitor.wait_for_function("document.querySelector('main img').complete")
    assert image.evaluate("img => img.naturalWidth") > 0  # the presigned URL loads under the CSP

    page.locator(".share-row").get_by_role("button", name="Revoke").click()
    expect(page.locator(".share-row")).to_contain_text("revoked")
    gone = visitor.goto(url)
    assert gone.status == 410
    expect(visitor.locator("h1")).to_have_text("Link no longer available")
