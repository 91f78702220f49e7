"""The main flows in a real browser: upload, generate, presets, usage, delete and reload."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.a11y import axe_violations
from tests.e2e.conftest import create_project, sign_in, upload
from tests.support import images as img
from tests.support.browser import screenshot


def test_upload_shows_ready_cards_and_rejected_files_once_with_matching_counts(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Upload shoot")
    photo = tmp_path / "sarah.jpg"
    photo.write_bytes(img.jpeg(900, 1200))
    bad = tmp_path / "notes.png"
    bad.write_bytes(img.text_as_png())
    page.set_input_files("#file-input", [str(photo), str(bad)])
    card = page.locator('#avatar-grid .avatar-card[data-status="ready"]')
    expect(card).to_have_count(1, timeout=20_000)
    expect(card.locator("h3")).to_contain_text("sarah")
    expect(card.locator("img")).to_have_attribute("src", re.compile("X-Amz-Signature"))
    # The thumbnail keeps its box while it loads (no layout shift) and really loads from the bucket.
    expect(card.locator("img")).to_have_attribute("width", "300")
    expect(card.locator("img")).to_have_attribute("loading", "lazy")
    page.wait_for_function("() => [...document.querySelectorAll('.avatar-card img')].every(i => i.complete && i.naturalWidth === 300)")
    # The rejected file is in one place only: its card in the rejected box, with the reason and Remove.
    rejected = page.locator('.avatar-card[data-status="rejected"]')
    expect(rejected).to_have_count(1, timeout=20_000)
    expect(page.locator("#rejected .avatar-card")).to_have_count(1)
    expect(rejected.locator(".reason")).to_contain_text("not a JPEG, PNG or WebP")
    expect(page.locator("#avatar-grid .avatar-card")).to_have_count(1)
    expect(page.locator("#uploads .upload")).to_have_count(0)
    expect(page.locator("#avatar-count")).to_have_text("1 avatar · 1 rejected upload")
    screenshot(page, "02-project-uploaded")
    rejected.get_by_role("button", name="Remove notes").click()
    expect(page.locator('.avatar-card[data-status="rejected"]')).to_have_count(0)
    expect(page.locator("#rejected")).to_be_hidden()
    expect(page.locator("#avatar-count")).to_have_text("1 avatar")
    page.reload()
    expect(page.locator(".avatar-card")).to_have_count(1)  # the removal reached the server


def test_generate_an_avatar_and_watch_it_complete(page, user):
    sign_in(page, user)
    create_project(page, "Generated cast")
    page.click("#generate-button")
    # This stack has no FLUX: the dialog says so before anyone waits for a portrait.
    expect(page.locator("#offline-note")).to_contain_text("Generation is offline on this stack")
    page.fill("#gen-prompt", "confident business woman in a bright office")
    page.fill("#gen-name", "Sarah")
    page.click("#gen-persona-section summary")  # persona and look are collapsed: the prompt comes first
    page.click("#gen-look-section summary")
    page.fill("#gen-persona-age", "32")
    page.select_option("#gen-gender", "female")
    page.select_option("#gen-style", "professional")
    page.click("#start-generation")
    card = page.locator('.avatar-card[data-status="ready"]')
    expect(card).to_have_count(1, timeout=30_000)
    expect(card.locator("h3")).to_contain_text("Sarah")
    expect(card.locator('[aria-label="AI generated"]')).to_have_count(1)
    expect(card.locator(".ribbon")).to_have_text("Offline placeholder")
    expect(page.locator(".job")).to_have_count(0)
    expect(page.locator("#avatar-count")).to_have_text("1 avatar")
    screenshot(page, "05-generated")


def test_use_preset_opens_the_form_prefilled_and_generate_now_starts_at_once(page, user):
    sign_in(page, user)
    create_project(page, "Presets")
    page.click("#generate-button")
    preset = page.locator(".preset").first
    expect(preset.locator("img")).to_have_attribute("src", re.compile("presets/"), timeout=20_000)
    screenshot(page, "06-preset-gallery")
    preset_name = preset.locator("strong").inner_text()
    preset.locator(".use-preset").click()
    # The form, not a job: pre-filled from the preset, and the person can change the name first.
    expect(page.locator("#generate-form")).to_be_visible()
    expect(page.locator("#preset-note")).to_contain_text(preset_name)
    expect(page.locator("#gen-name")).to_have_value(preset_name)
    assert len(page.input_value("#gen-prompt")) > 10
    assert page.input_value("#gen-gender") != ""
    expect(page.locator(".job")).to_have_count(0)
    page.fill("#gen-name", "Campaign lead")
    page.click("#start-generation")
    ready = page.locator('.avatar-card[data-status="ready"]')
    expect(ready).to_have_count(1, timeout=30_000)
    expect(ready.locator("h3")).to_contain_text("Campaign lead")
    assert ready.get_attribute("data-source") == "preset"
    # "Generate now" skips the form.
    page.click("#generate-button")
    page.locator(".preset").first.locator(".generate-now").click()
    expect(page.locator("dialog")).not_to_be_visible()
    expect(page.locator('.avatar-card[data-status="ready"]')).to_have_count(2, timeout=30_000)


def test_persona_example_fills_persona_look_and_a_starter_prompt_that_generates(page, user):
    sign_in(page, user)
    create_project(page, "Personas")
    page.click("#generate-button")
    page.wait_for_function("() => document.querySelectorAll('#persona-picker option').length > 5")
    page.select_option("#persona-picker", "ceo-sarah")
    expect(page.locator("#gen-name")).to_have_value("Sarah")  # one name field (issue 28 #10)
    expect(page.locator("#gen-persona-age")).to_have_value("32")
    expect(page.locator("#gen-persona-background")).to_have_value(re.compile("Business consultant"))
    expect(page.locator("#gen-gender")).to_have_value("female")
    expect(page.locator("#gen-ageRange")).to_have_value("adult")
    expect(page.locator("#gen-style")).to_have_value("professional")
    expect(page.locator("#gen-prompt")).to_have_value(re.compile("32-year-old woman, business consultant"))
    expect(page.locator("#gen-name")).to_have_value("Sarah")
    screenshot(page, "04-generate-form")
    page.click("#start-generation")  # nothing left for the browser to refuse
    ready = page.locator('.avatar-card[data-status="ready"]')
    expect(ready).to_have_count(1, timeout=30_000)
    page.select_option("#filter-gender", "female")
    expect(page.locator(".avatar-card")).to_have_count(1)
    page.select_option("#filter-gender", "male")
    expect(page.locator(".avatar-card")).to_have_count(0)
    expect(page.locator("#no-avatars")).to_contain_text("No avatars match")


def test_usage_timeline_summary_and_counters_update_without_reload(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Usage")
    photo = tmp_path / "budi.png"
    photo.write_bytes(img.png(400, 400))
    upload(page, photo)
    card = page.locator('.avatar-card[data-status="ready"]')
    expect(card).to_have_count(1, timeout=20_000)
    expect(card.locator(".usage")).to_have_text("")  # issue 28 #15: an unused card says nothing, not "Not used yet"
    card.locator("button.thumb").click()
    expect(page.locator("#usage-history")).to_contain_text("Not used by any app yet")
    # Recording a use is an app's action: it sits in the developer view, not in the lightbox.
    expect(page.locator("#record-usage")).to_have_count(0)
    page.click("#open-developer")
    page.select_option("#usage-app", "pose-generator")
    page.click("#record-usage")
    expect(page.locator("#avatar-json")).to_contain_text('"usageCount": 1')
    page.select_option("#usage-app", "video-generator")
    page.click("#record-usage")
    expect(page.locator("#avatar-json")).to_contain_text('"usageCount": 2')
    page.click("#record-usage")
    expect(page.locator("#avatar-json")).to_contain_text('"usageCount": 3')
    page.click("#leave-developer")
    summary = page.locator(".usage-summary li", has_text="Video Generator")
    expect(summary.locator(".count")).to_have_text("2×")
    expect(page.locator(".timeline .use")).to_have_count(3)
    expect(page.locator(".timeline .use time").first).to_have_attribute("datetime", re.compile(r"\d{4}-\d\d-\d\dT"))
    screenshot(page, "07-usage-history")
    page.keyboard.press("Escape")
    # The card's counter followed, with no reload.
    expect(card.locator(".usage")).to_contain_text("Used 3×")
    page.click("#stats-button")
    expect(page.locator("#stats")).to_contain_text("Total uses")
    expect(page.locator("#stats .chart li")).to_have_count(2)
    # Chart labels are page text, not a scaled-down SVG.
    size = page.eval_on_selector("#stats .bar-label", "el => parseFloat(getComputedStyle(el).fontSize)")
    assert size >= 12
    screenshot(page, "08-stats")


def test_delete_and_reload(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "To delete")
    photo = tmp_path / "x.webp"
    photo.write_bytes(img.webp(320, 320))
    upload(page, photo)
    expect(page.locator('.avatar-card[data-status="ready"]')).to_have_count(1, timeout=20_000)
    page.reload()
    expect(page.locator('.avatar-card[data-status="ready"]')).to_have_count(1)  # survives a reload
    page.locator(".avatar-card button", has_text="Delete").click()
    page.locator("dialog button.danger").click()
    expect(page.locator(".avatar-card")).to_have_count(0)
    expect(page.locator("#avatar-count")).to_have_text("0 avatars")
    expect(page.locator("#no-avatars")).to_contain_text("Add the first face")
    page.click("#delete-project")
    expect(page.locator("dialog")).to_contain_text("its 0 avatars")
    page.locator("dialog button.danger").click()
    expect(page.locator("#new-project-name")).to_be_visible()
    expect(page.locator(".project-card")).to_have_count(0)
    page.reload()
    expect(page.locator(".project-card")).to_have_count(0)


def test_jobs_started_elsewhere_appear_without_a_reload(page, user, local_stack):
    sign_in(page, user)
    create_project(page, "Two tabs")
    project_id = page.evaluate("location.hash").split("/")[-1]
    # Another tab (or another app) starts a generation through the API.
    resp = local_stack.request("POST", f"/api/apps/avatar-creator/projects/{project_id}/avatars/generate",
                               {"prompt": "smiling chef in a bright kitchen", "name": "From elsewhere"},
                               token=local_stack.token(user))
    assert resp.status == 202, resp
    card = page.locator('.avatar-card[data-status="ready"]', has_text="From elsewhere")
    expect(card).to_have_count(1, timeout=30_000)
    expect(page.locator("#avatar-count")).to_have_text("1 avatar")


def test_a_big_project_pages_by_cursor_with_lazy_sized_thumbnails(page, user, local_stack):
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.uploads import browser_post

    token = local_stack.token(user)
    api = "/api/apps/avatar-creator"
    pid = local_stack.request("POST", f"{api}/projects", {"name": "Crowd"}, token=token).json()["id"]
    photo = img.jpeg(320, 400)
    files = [{"name": f"Face {i:02d}", "contentType": "image/jpeg", "size": len(photo)} for i in range(20)]
    tickets = []
    for batch in (files, files[:10]):
        resp = local_stack.request("POST", f"{api}/projects/{pid}/avatars/uploads", {"files": batch}, token=token)
        tickets += [item["upload"] for item in resp.json()["items"]]
    with ThreadPoolExecutor(6) as pool:
        assert all(r.status_code in (200, 204) for r in pool.map(lambda t: browser_post(t["url"], t["fields"], photo), tickets))
    sign_in(page, user)
    page.locator(".project-card", has_text="Crowd").click()
    expect(page.locator("#avatar-count")).to_have_text("30 avatars", timeout=30_000)
    page.reload()  # every upload is ready: the grid starts from the server's first page
    cards = page.locator("#avatar-grid .avatar-card")
    expect(cards).to_have_count(20)  # one page, not the whole project
    assert page.locator("#avatar-grid img[loading=lazy][width='300'][height='300']").count() == 20
    page.locator("#load-more, .sentinel").last.scroll_into_view_if_needed()
    expect(cards).to_have_count(30)  # the rest came by cursor
    ids = [cards.nth(i).get_attribute("data-avatar-id") for i in range(30)]
    assert len(set(ids)) == 30  # no card twice across the page boundary


def test_polling_pauses_while_the_tab_is_hidden_and_resumes_when_visible(page, user):
    sign_in(page, user)
    create_project(page, "Visibility")
    polls: list[float] = []
    page.on("request", lambda r: "generations?status=active" in r.url and polls.append(time.monotonic()))
    page.wait_for_timeout(4500)
    assert polls, "the active list is polled while the page is visible"
    # The tab goes to the background (as the browser reports it to the page).
    page.evaluate("""() => { Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
                             document.dispatchEvent(new Event('visibilitychange')); }""")
    page.wait_for_timeout(4500)  # a tick already scheduled may still run once
    hidden_at = time.monotonic()
    page.wait_for_timeout(9000)
    assert not [t for t in polls if t > hidden_at], "no polling while hidden"
    back = time.monotonic()
    page.evaluate("""() => { Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
                             document.dispatchEvent(new Event('visibilitychange')); }""")
    page.wait_for_timeout(1000)
    assert [t for t in polls if t > back], "polling resumes at once when the tab is visible again"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_hovered_buttons_keep_their_contrast(new_page, user, scheme):
    """A pointer left on a button (as after every click) must not drop its text below WCAG AA."""
    # Reduced motion turns the colour transitions off, so axe reads the hover colour itself.
    page = new_page(color_scheme=scheme, reduced_motion="reduce")
    sign_in(page, user)
    create_project(page, "Hover check")
    buttons = page.locator("main button:visible")
    assert buttons.count() >= 4  # generate, upload, rename, delete at least
    for i in range(buttons.count()):
        button = buttons.nth(i)
        button.hover()
        bad = [v for v in axe_violations(page) if v["id"] == "color-contrast"]
        assert not bad, f"{scheme}: hovering {button.evaluate('b => b.id || b.textContent')}: {bad}"
