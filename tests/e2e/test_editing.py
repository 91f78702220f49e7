"""The avatar dialog: edit any avatar (uploaded ones too), human labels, Advanced, and the crop step."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import create_project, sign_in, uploaded_avatar
from tests.support.browser import screenshot


def test_edit_an_uploaded_avatar_then_the_filters_find_it(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Edit me")
    card = uploaded_avatar(page, tmp_path)
    page.select_option("#filter-gender", "female")
    expect(page.locator(".avatar-card")).to_have_count(0)  # no attributes yet: the filter cannot match
    page.select_option("#filter-gender", "")
    expect(page.locator(".avatar-card")).to_have_count(1)
    # Issue 28 #10: the card's Edit opens the form itself, with one name field (the persona follows it).
    card.get_by_role("button", name="Edit maya").click()
    expect(page.locator("#edit-name")).to_be_focused()
    assert page.locator("#avatar-form label", has_text=re.compile("name", re.I)).count() == 1
    page.fill("#edit-name", "Maya Putri")
    page.fill("#edit-persona-age", "29")
    page.fill("#edit-persona-personality", "warm, witty")
    page.fill("#edit-persona-background", "Runs a batik studio in Solo.")
    for field, value in (("gender", "female"), ("ageRange", "young-adult"), ("ethnicity", "southeast asian"),
                         ("bodyType", "slim"), ("hairStyle", "hijab"), ("hairColor", "black"), ("eyeColor", "brown"),
                         ("skinTone", "tan"), ("style", "traditional")):
        page.select_option(f"#edit-{field}", value)
    screenshot(page, "10-edit-avatar")
    page.click("#save-avatar")
    facts = page.locator(".detail-info")
    expect(facts).to_contain_text("Runs a batik studio in Solo.")
    expect(facts).to_contain_text("29 years")
    expect(facts).to_contain_text("Southeast Asian")  # issue 28: attribute values are words from the catalogue
    expect(page.locator("#dialog-title")).to_have_text("Maya Putri")
    page.keyboard.press("Escape")
    expect(page.locator(".avatar-card h3")).to_contain_text("Maya Putri")
    page.select_option("#filter-gender", "female")
    page.select_option("#filter-style", "traditional")
    expect(page.locator(".avatar-card")).to_have_count(1)
    page.select_option("#filter-style", "sporty")
    expect(page.locator(".avatar-card")).to_have_count(0)
    # Cleared fields are cleared on the server too.
    page.select_option("#filter-style", "")
    page.locator(".avatar-card button.thumb").click()
    page.click("#edit-avatar")
    page.select_option("#edit-gender", "")
    page.fill("#edit-persona-background", "")
    page.click("#save-avatar")
    expect(page.locator(".detail-info")).not_to_contain_text("batik")
    page.keyboard.press("Escape")
    expect(page.locator(".avatar-card")).to_have_count(0)  # still filtered by female, which it no longer is


def test_detail_view_has_human_labels_with_prompt_and_seed_under_the_picture_and_size_under_advanced(page, user):
    sign_in(page, user)
    create_project(page, "Details")
    page.click("#generate-button")
    page.fill("#gen-prompt", "calm engineer at a standing desk")
    page.fill("#gen-name", "Arif")  # one name field: the persona's name follows it (issue 28 #10)
    page.click("#gen-persona-section summary")
    page.click("#gen-look-section summary")
    page.fill("#gen-persona-age", "29")
    page.select_option("#gen-hairColor", "black")
    page.click("#start-generation")
    card = page.locator('.avatar-card[data-status="ready"]')
    expect(card).to_have_count(1, timeout=30_000)
    card.locator("button.thumb").click()
    info = page.locator(".detail-info")
    expect(info).to_contain_text("Persona name")
    expect(info).to_contain_text("Hair colour")
    for raw in ("personaName", "personaAge", "hairColor", "width", "height"):
        assert raw not in info.inner_text()
    # The lightbox (issue 28): the prompt and the seed under the picture, open; size and format under Advanced.
    prompt = page.locator("#recipe dd.prompt")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("calm engineer")
    expect(page.locator("#recipe")).to_contain_text("Seed")
    expect(page.locator("#advanced")).not_to_have_attribute("open", "")
    page.locator("#advanced summary").click()
    expect(page.locator("#advanced")).to_contain_text("Size")
    # The offline provider's picture is said to be a placeholder in the dialog too.
    expect(page.locator("#offline-caption")).to_contain_text("Offline placeholder")
    screenshot(page, "03-avatar-detail")


def test_crop_step_stays_hidden_while_the_api_has_no_crop(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Crop")
    card = uploaded_avatar(page, tmp_path, "face")
    avatar_id = card.get_attribute("data-avatar-id")
    has_crop = page.evaluate("""id => fetch(`/api/apps/avatar-creator/avatars/${id}`, { headers: {
        Authorization: `Bearer ${localStorage.getItem('avatar-creator.token')}` } }).then(r => r.json()).then(a => 'crop' in a)""", avatar_id)
    card.locator("button.thumb").click()
    expect(page.locator("#edit-avatar")).to_be_visible()
    # Built against PUT /avatars/{id} {crop}; shown only when the avatar JSON carries a `crop` key.
    expect(page.locator("#crop-avatar")).to_have_count(1 if has_crop else 0)
    if has_crop:  # once the image pipeline's crop API is merged
        page.click("#crop-avatar")
        square = page.locator("#crop-square")
        expect(square).to_be_focused()
        readout = page.locator("#crop-readout")
        expect(readout).to_have_text("600 px square at 0, 100")  # 600×800 upright: the centred square
        page.keyboard.press("+")  # zoom in: a smaller square, same centre
        page.keyboard.press("ArrowUp")
        zoomed = readout.inner_text()
        assert not zoomed.startswith("600 px"), zoomed
        box = square.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2 + 40, steps=4)
        page.mouse.up()
        assert readout.inner_text() != zoomed  # the drag moved it
        page.click("#save-crop")
        expect(page.locator("#crop-avatar")).to_be_visible()
        saved = page.evaluate("""id => fetch(`/api/apps/avatar-creator/avatars/${id}`, { headers: {
            Authorization: `Bearer ${localStorage.getItem('avatar-creator.token')}` } }).then(r => r.json()).then(a => a.crop)""", avatar_id)
        assert saved and saved["size"] < 600 and saved["x"] + saved["size"] <= 600 and saved["y"] + saved["size"] <= 800, saved
        page.click("#crop-avatar")
        screenshot(page, "11-crop")
        page.click("#reset-crop")
        expect(page.locator("#crop-avatar")).to_be_visible()
        reset = page.evaluate("""id => fetch(`/api/apps/avatar-creator/avatars/${id}`, { headers: {
            Authorization: `Bearer ${localStorage.getItem('avatar-creator.token')}` } }).then(r => r.json()).then(a => a.crop)""", avatar_id)
        assert reset is None
