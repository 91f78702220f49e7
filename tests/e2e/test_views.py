"""Every view and dialog at desktop and phone width (light and dark): axe-core finds no critical or
serious violation, nothing scrolls sideways, and each gets a screenshot in test-artifacts/e2e/."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import DESKTOP, PHONE, create_project, sign_in, upload
from tests.support import images as img
from tests.support.browser import screenshot

LONG = "Supercalifragilisticexpialidocious" * 3  # one unbroken 102-letter word
SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "sample-portrait.jpg"


def no_sideways_scroll(page, where: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, f"{where}: page is {width} px wide in a {viewport} px viewport"
    # The open dialog must not scroll sideways either.
    inner = page.evaluate("() => { const b = document.querySelector('dialog[open] .dialog-body'); return b ? b.scrollWidth - b.clientWidth : 0; }")
    assert inner <= 0, f"{where}: the dialog scrolls sideways by {inner} px"


def check(page, name: str, suffix: str) -> None:
    no_sideways_scroll(page, name)
    assert_accessible(page, f"{name} ({suffix})")
    page.evaluate("document.getElementById('toasts').replaceChildren()")  # the view, not the last actions' toasts
    page.evaluate("document.querySelector('dialog[open] .dialog-body')?.scrollTo(0, 0)")  # a dialog as it opens
    # A modal is shown as the person sees it: the viewport, not the page stretched behind it.
    screenshot(page, f"view-{name}-{suffix}", full_page=not page.locator("dialog[open]").count())


def close_dialog(page) -> None:
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)


@pytest.mark.parametrize("suffix, viewport, scheme", [("desktop", DESKTOP, "light"), ("phone", PHONE, "light"),
                                                      ("desktop-dark", DESKTOP, "dark")])
def test_every_view_and_dialog_is_accessible_fits_and_is_screenshotted(new_page, user, tmp_path, suffix, viewport, scheme):
    page = new_page(viewport, color_scheme=scheme)
    page.goto("/")
    expect(page.locator("#dev-signin")).to_be_visible()
    check(page, "signin", suffix)
    sign_in(page, user)
    expect(page.locator("#no-projects")).to_be_visible()
    check(page, "projects-empty", suffix)
    # At phone width the names are one unbroken 100-letter word: they must wrap or be cut, never widen the page.
    long_names = suffix == "phone"
    create_project(page, LONG[:100] if long_names else "Spring campaign")
    expect(page.locator("#no-avatars")).to_be_visible()
    check(page, "project-empty", suffix)
    photo = tmp_path / (f"{LONG[:80]}.jpg" if long_names else "Sarah.jpg")
    photo.write_bytes(SAMPLE.read_bytes())
    bad = tmp_path / "notes.png"
    bad.write_bytes(img.text_as_png())
    page.set_input_files("#file-input", [str(photo), str(bad)])
    expect(page.locator('#avatar-grid .avatar-card[data-status="ready"]')).to_have_count(1, timeout=20_000)
    expect(page.locator('#rejected .avatar-card')).to_have_count(1, timeout=20_000)
    page.click("#generate-button")
    page.wait_for_function("() => document.querySelectorAll('#persona-picker option').length > 5")
    page.select_option("#persona-picker", "nurse-fitri")
    expect(page.locator(".preset img").first).to_be_visible(timeout=20_000)
    check(page, "generate-form", suffix)
    # The Generate button is reachable without scrolling the long form (sticky footer).
    box = page.locator("#start-generation").bounding_box()
    assert box and box["y"] + box["height"] <= viewport["height"], box
    page.click("#gen-look-section summary")
    check(page, "generate-look", suffix)
    page.click("#start-generation")
    if suffix == "phone":  # the sheet closes once the job starts
        expect(page.locator("#generate-panel")).to_have_count(0)
    else:  # beside the grid it stays open; the grid is shown alone
        page.click("#close-generate")
    expect(page.locator('#avatar-grid .avatar-card[data-status="ready"]')).to_have_count(2, timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('.avatar-card img')].every(i => i.complete && i.naturalWidth > 0)")
    check(page, "project", suffix)
    page.locator("#avatar-grid .avatar-card button.thumb").first.click()
    expect(page.locator("#edit-avatar")).to_be_visible()
    page.click("#open-developer")
    page.click("#record-usage")
    expect(page.locator("#avatar-json")).to_contain_text('"usageCount": 1')
    check(page, "avatar-developer", suffix)
    page.click("#leave-developer")
    expect(page.locator(".timeline .use")).to_have_count(1)
    page.locator("#advanced summary").click()
    check(page, "avatar-detail", suffix)
    page.click("#edit-avatar")
    check(page, "avatar-edit", suffix)
    close_dialog(page)
    page.click("#stats-button")
    expect(page.locator("#stats .chart li")).to_have_count(1)
    check(page, "stats", suffix)
    close_dialog(page)
    page.click("#delete-project")
    # Issue 28 #12: the confirm opens on Cancel (the safe choice), not on Delete.
    expect(page.locator("#confirm-no")).to_be_focused()
    check(page, "confirm-delete", suffix)
    close_dialog(page)
    page.click("a.crumbs-home, .crumbs a")
    expect(page.locator(".project-card")).to_have_count(1)
    check(page, "projects", suffix)


def test_touch_devices_say_tap_to_choose_photos(new_page, user):
    page = new_page(PHONE, has_touch=True, is_mobile=True)
    sign_in(page, user)
    create_project(page, "Phone shoot")
    expect(page.locator("#dropzone")).to_contain_text("Tap to choose photos")
    assert "Drop" not in page.locator("#dropzone").inner_text()
    desktop = new_page(DESKTOP)
    sign_in(desktop, user)
    desktop.locator(".project-card").first.click()
    expect(desktop.locator("#dropzone")).to_contain_text("Drop photos here")


def test_empty_states_offer_the_next_step(page, user, tmp_path):
    sign_in(page, user)
    empty = page.locator("#no-projects")
    expect(empty).to_contain_text("first project")
    empty.get_by_role("button").click()
    expect(page.locator("#new-project-name")).to_be_focused()
    create_project(page, "Empty")
    none = page.locator("#no-avatars")
    expect(none.locator("#empty-upload")).to_be_visible()
    none.locator("#empty-generate").click()
    expect(page.locator("#generate-form")).to_be_visible()
    close_dialog(page)
    photo = tmp_path / "first.png"
    photo.write_bytes(img.png(320, 320))
    with page.expect_file_chooser() as chooser:
        page.click("#empty-upload")
    chooser.value.set_files(str(photo))
    expect(page.locator('.avatar-card[data-status="ready"]')).to_have_count(1, timeout=20_000)
    expect(page.locator("#no-avatars")).to_have_count(0)
    page.select_option("#filter-style", "sporty")
    expect(page.locator("#no-avatars")).to_contain_text("No avatars match")


def test_the_whole_flow_works_by_keyboard_alone(page, user, tmp_path):
    """Sign in, create a project, upload, generate, open, edit and delete with keys only."""
    page.goto("/")
    page.focus("#dev-user")
    page.keyboard.press("Control+a")
    page.keyboard.type(user)
    page.keyboard.press("Enter")
    expect(page.locator("#new-project-name")).to_be_visible()
    page.focus("#new-project-name")
    page.keyboard.type("Keyboard cast")
    page.keyboard.press("Enter")
    expect(page.locator("#project-title")).to_have_text("Keyboard cast")
    # Upload: the drop zone is a button that opens the file chooser on Enter.
    photo = tmp_path / "keys.png"
    photo.write_bytes(img.png(320, 320))
    dropzone = page.locator("#dropzone")
    expect(dropzone).to_be_visible()
    dropzone.focus()
    expect(dropzone).to_be_focused()  # the project view has rendered: Enter reaches the drop zone
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(photo))
    expect(page.locator('.avatar-card[data-status="ready"]')).to_have_count(1, timeout=20_000)
    # Generate: Tab to the button, type, Enter submits.
    page.focus("#generate-button")
    page.keyboard.press("Enter")
    expect(page.locator("#gen-prompt")).to_be_focused()
    page.keyboard.type("friendly teacher in a classroom")
    page.keyboard.press("Tab")
    expect(page.locator("#gen-name")).to_be_focused()
    page.keyboard.type("Guru")
    page.keyboard.press("Enter")
    expect(page.locator('.avatar-card[data-status="ready"]')).to_have_count(2, timeout=30_000)
    # Open the uploaded avatar with Tab + Enter, edit, save.
    thumb = page.locator('.avatar-card', has_text="keys").locator("button.thumb")
    thumb.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#edit-avatar")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#edit-name")).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("Keys renamed")
    page.keyboard.press("Enter")
    expect(page.locator("#dialog-title")).to_have_text("Keys renamed")
    page.keyboard.press("Escape")
    expect(page.locator(".avatar-card h3", has_text="Keys renamed")).to_have_count(1)
    # Delete: Cancel has the focus (issue 28 #12); Shift+Tab reaches Delete, Enter confirms.
    page.locator('.avatar-card', has_text="Keys renamed").get_by_role("button", name="Delete Keys renamed").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-no")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.locator("dialog button.danger")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator('.avatar-card', has_text="Keys renamed")).to_have_count(0)
    expect(page.locator("#avatar-count")).to_have_text("1 avatar")
