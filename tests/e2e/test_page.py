"""The original service's three flows in a real browser, plus delete and reload."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import create_project, sign_in
from tests.support import images as img
from tests.support.browser import screenshot


def test_upload_an_avatar_and_see_it(page, user, tmp_path):
    sign_in(page, user)
    screenshot(page, "01-projects-empty")
    create_project(page, "Upload shoot")
    photo = tmp_path / "sarah.jpg"
    photo.write_bytes(img.jpeg(900, 1200))
    bad = tmp_path / "notes.png"
    bad.write_bytes(img.text_as_png())
    page.set_input_files("#file-input", [str(photo), str(bad)])
    card = page.locator('.avatar-card[data-status="ready"]')
    expect(card).to_have_count(1, timeout=20_000)
    expect(card.locator("h3")).to_contain_text("sarah")
    expect(card.locator("img")).to_have_attribute("src", re.compile("X-Amz-Signature"))
    rejected = page.locator('.avatar-card[data-status="rejected"]')
    expect(rejected).to_have_count(1, timeout=20_000)
    expect(rejected.locator(".reason")).to_contain_text("not a JPEG, PNG or WebP")
    # The thumbnail really loads from the bucket.
    page.wait_for_function("() => [...document.querySelectorAll('.avatar-card img')].every(i => i.complete && i.naturalWidth === 300)")
    screenshot(page, "02-project-uploaded")
    card.locator("button.thumb").click()
    expect(page.locator("dialog .preview")).to_be_visible()
    screenshot(page, "03-avatar-preview")


def test_generate_an_avatar_and_watch_it_complete(page, user):
    sign_in(page, user)
    create_project(page, "Generated cast")
    page.click("#generate-button")
    page.fill("#gen-prompt", "confident business woman in a bright office")
    page.fill("#gen-name", "Sarah")
    page.fill("#gen-persona-name", "Sarah")
    page.fill("#gen-persona-age", "32")
    page.select_option("#gen-gender", "female")
    page.select_option("#gen-style", "professional")
    screenshot(page, "04-generate-form")
    page.click("#start-generation")
    card = page.locator('.avatar-card[data-status="ready"]')
    expect(card).to_have_count(1, timeout=30_000)
    expect(card.locator("h3")).to_contain_text("Sarah")
    expect(card.locator('[aria-label="AI generated"]')).to_have_count(1)
    expect(page.locator(".job")).to_have_count(0)
    screenshot(page, "05-generated")


def test_one_click_preset_from_the_gallery(page, user):
    sign_in(page, user)
    create_project(page, "Presets")
    page.click("#generate-button")
    page.click("#tab-1")
    preset = page.locator(".preset").first
    expect(preset.locator("img")).to_have_attribute("src", re.compile("presets/"), timeout=20_000)
    screenshot(page, "06-preset-gallery")
    preset.locator(".use-preset").click()
    expect(page.locator('.avatar-card[data-status="ready"]')).to_have_count(1, timeout=30_000)


def test_record_usage_and_read_the_history_and_stats(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Usage")
    photo = tmp_path / "budi.png"
    photo.write_bytes(img.png(400, 400))
    page.set_input_files("#file-input", str(photo))
    card = page.locator('.avatar-card[data-status="ready"]')
    expect(card).to_have_count(1, timeout=20_000)
    card.locator("button.thumb").click()
    expect(page.locator("#usage-history")).to_contain_text("Not used by any app yet")
    page.select_option("#usage-app", "pose-generator")
    page.click("#record-usage")
    page.select_option("#usage-app", "video-generator")
    page.click("#record-usage")
    page.click("#record-usage")
    summary = page.locator(".usage-summary")
    expect(summary).to_contain_text("Video Generator")
    expect(summary.locator("tr", has_text="Video Generator")).to_contain_text("2")
    expect(page.locator(".usage-items li")).to_have_count(3)
    screenshot(page, "07-usage-history")
    page.keyboard.press("Escape")
    page.click("#stats-button")
    expect(page.locator("#stats")).to_contain_text("Total uses")
    expect(page.locator("#stats .chart svg rect")).to_have_count(2)
    screenshot(page, "08-stats")


def test_delete_and_reload(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "To delete")
    photo = tmp_path / "x.webp"
    photo.write_bytes(img.webp(320, 320))
    page.set_input_files("#file-input", str(photo))
    expect(page.locator('.avatar-card[data-status="ready"]')).to_have_count(1, timeout=20_000)
    page.reload()
    expect(page.locator('.avatar-card[data-status="ready"]')).to_have_count(1)  # survives a reload
    page.locator(".avatar-card button", has_text="Delete").click()
    page.locator("dialog button.danger").click()
    expect(page.locator(".avatar-card")).to_have_count(0)
    page.click("#delete-project")
    expect(page.locator("dialog")).to_contain_text("its 0 avatars")
    page.locator("dialog button.danger").click()
    expect(page.locator("#new-project-name")).to_be_visible()
    expect(page.locator(".project-card")).to_have_count(0)
    page.reload()
    expect(page.locator(".project-card")).to_have_count(0)


def test_works_at_phone_width_and_signs_out(page, user):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, user)
    create_project(page, "Phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "09-phone")
    page.click("#signout-button")
    expect(page.locator("#dev-signin")).to_be_visible()
