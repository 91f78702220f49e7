"""Issue 28: Generate is a side panel — beside the grid on a desktop (the grid stays visible and in
use), a full-width sheet on a phone; the prompt first, the presets as a strip of thumbnails, persona
and look collapsed, one name field; Escape closes it and gives the focus back."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE, create_project, sign_in

ON_TOP = """s => { const e = document.querySelector(s); const r = e.getBoundingClientRect();
    return e.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)); }"""


def test_generate_opens_beside_the_grid_with_the_prompt_first_and_persona_and_look_collapsed(new_page, user):
    page = new_page(DESKTOP)
    sign_in(page, user)
    create_project(page, "Side panel")
    page.click("#generate-button")
    panel = page.locator("#generate-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#generate-button")).to_have_attribute("aria-expanded", "true")
    expect(page.locator("dialog[open]")).to_have_count(0)  # not a modal: the page stays in use
    # The prompt is the first field, and it has the focus; one name field.
    expect(page.locator("#gen-prompt")).to_be_focused()
    first = panel.locator("#generate-form").locator("input, textarea, select").first
    expect(first).to_have_id("gen-prompt")
    expect(panel.locator("input[id$='name'], input[id*='name-']")).to_have_count(1)
    # Persona and look are collapsed until opened.
    for section, field in (("#gen-persona-section", "#gen-persona-age"), ("#gen-look-section", "#gen-gender")):
        expect(page.locator(section)).not_to_have_attribute("open", "")
        expect(page.locator(field)).to_be_hidden()
        page.click(f"{section} summary")
        expect(page.locator(field)).to_be_visible()
    # The presets are a strip of thumbnails inside the panel.
    strip = panel.locator(".presets")
    expect(strip.locator(".preset img").first).to_be_visible(timeout=20_000)
    rows = strip.evaluate("el => new Set([...el.children].map(c => c.offsetTop)).size")
    assert rows == 1
    # Beside the grid: the page makes room, nothing of the project is under the panel.
    box = panel.bounding_box()
    assert box["x"] + box["width"] == DESKTOP["width"] and 380 <= box["width"] <= 480, box
    head = page.locator(".project-head").bounding_box()
    assert head["x"] + head["width"] <= box["x"], (head, box)
    # A generation starts, its tile shows beside the panel, and the panel stays for the next one.
    page.fill("#gen-prompt", "smiling batik designer in a bright studio")
    page.fill("#gen-name", "Dewi")
    page.click("#start-generation")
    tile = page.locator("#avatar-grid .pending-tile, #avatar-grid .avatar-card").first
    expect(tile).to_be_visible()
    assert page.evaluate(ON_TOP, "#avatar-grid > .card")
    expect(panel).to_be_visible()
    expect(page.locator('#avatar-grid .avatar-card[data-status="ready"]')).to_have_count(1, timeout=30_000)
    # Escape closes it; the focus goes back to the Generate button, and the page takes the width again.
    page.focus("#gen-name")
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    expect(page.locator("#generate-button")).to_be_focused()
    expect(page.locator("#generate-button")).to_have_attribute("aria-expanded", "false")
    assert page.locator(".project-head").bounding_box()["width"] > head["width"]


def test_on_a_phone_generate_is_a_full_width_sheet_that_closes_when_the_job_starts(new_page, user):
    page = new_page(PHONE)
    sign_in(page, user)
    create_project(page, "Sheet")
    page.click("#generate-button")
    panel = page.locator("#generate-panel")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, PHONE["width"], PHONE["height"]), box
    assert page.evaluate(ON_TOP, "#gen-prompt")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # The Generate button is on screen without scrolling the sheet (sticky footer).
    button = page.locator("#start-generation").bounding_box()
    assert button["y"] + button["height"] <= PHONE["height"], button
    page.fill("#gen-prompt", "friendly nurse in a bright clinic")
    page.fill("#gen-name", "Fitri")
    page.click("#start-generation")
    expect(panel).to_have_count(0)
    expect(page.locator("#avatar-grid > .card").first).to_be_visible()
    expect(page.locator("#generate-button")).to_be_focused()
