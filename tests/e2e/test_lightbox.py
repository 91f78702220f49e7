"""Issue 28: an avatar opens in a lightbox with an address of its own (reload opens it, Back closes
it), steps to its neighbours with ← / → and the arrows over the picture, copies its prompt and seed,
downloads its image, and keeps the ids and raw JSON in a developer view with its own address."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import create_project, sign_in

API = "/api/apps/avatar-creator"


def two_generated(page, local_stack, user) -> str:
    """A project with "Arif (1)" and "Arif (2)" (seed 7), both on screen; returns the project id."""
    sign_in(page, user)
    create_project(page, "Lightbox")
    pid = page.evaluate("location.hash").split("/")[-1]
    resp = local_stack.request("POST", f"{API}/projects/{pid}/avatars/generate",
                               {"prompt": "calm engineer at a standing desk", "name": "Arif", "numImages": 2, "seed": 7},
                               token=local_stack.token(user))
    assert resp.status == 202, resp
    names = page.locator('#avatar-grid .avatar-card[data-status="ready"] h3 .ellipsis')
    expect(names).to_have_text(["Arif (1)", "Arif (2)"], timeout=60_000)
    return pid


def card_id(page, name: str) -> str:
    return page.locator(".avatar-card", has_text=name).get_attribute("data-avatar-id")


def test_the_lightbox_has_its_own_address_that_reload_opens_and_back_closes(new_page, user, local_stack):
    page = new_page()
    pid = two_generated(page, local_stack, user)
    first, second = card_id(page, "Arif (1)"), card_id(page, "Arif (2)")
    page.locator(".avatar-card", has_text="Arif (1)").locator(".thumb").click()
    expect(page.locator("#dialog-title")).to_have_text("Arif (1)")
    expect(page).to_have_url(re.compile(rf"#/projects/{pid}/avatars/{first}$"))
    # The picture is large: most of the dialog's width on a desktop.
    image = page.locator("#lightbox-image")
    page.wait_for_function("() => { const i = document.getElementById('lightbox-image'); return i && i.complete && i.naturalWidth > 0; }")
    assert image.bounding_box()["width"] >= 500
    # → steps to the neighbour and the address follows; the arrow over the picture steps back.
    page.keyboard.press("ArrowRight")
    expect(page.locator("#dialog-title")).to_have_text("Arif (2)")
    expect(page).to_have_url(re.compile(rf"#/projects/{pid}/avatars/{second}$"))
    expect(page.locator("#lightbox-next")).to_have_count(0)  # the last avatar has no next
    page.click("#lightbox-prev")
    expect(page.locator("#dialog-title")).to_have_text("Arif (1)")
    page.click("#lightbox-next")
    expect(page.locator("#dialog-title")).to_have_text("Arif (2)")
    # A reload of that address opens the same avatar over its project.
    page.reload()
    expect(page.locator("dialog[open] #dialog-title")).to_have_text("Arif (2)")
    expect(page.locator("#project-title")).to_have_text("Lightbox")
    # Back closes it and stays on the project, grid and all.
    page.go_back()
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(page).to_have_url(re.compile(rf"#/projects/{pid}$"))
    expect(page.locator('#avatar-grid .avatar-card[data-status="ready"]')).to_have_count(2)
    # Closed another way (Escape), the address goes back to the project too.
    page.locator(".avatar-card", has_text="Arif (2)").locator(".thumb").click()
    expect(page).to_have_url(re.compile(rf"/avatars/{second}$"))
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile(rf"#/projects/{pid}$"))


def test_the_lightbox_shows_prompt_and_seed_with_copy_and_downloads_the_image(new_page, user, local_stack):
    page = new_page(accept_downloads=True)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    two_generated(page, local_stack, user)
    page.locator(".avatar-card", has_text="Arif (1)").locator(".thumb").click()
    recipe = page.locator("#recipe")
    expect(recipe.locator(".prompt .value")).to_contain_text("calm engineer at a standing desk")
    expect(recipe.locator(".seed .value")).to_have_text("7")
    page.get_by_role("button", name="Copy Generated prompt").click()
    expect(page.locator(".toast.ok", has_text="Generated prompt copied")).to_be_visible()
    assert "calm engineer at a standing desk" in page.evaluate("navigator.clipboard.readText()")
    with page.expect_download() as done:
        page.click("#download-avatar")
    download = done.value
    assert download.suggested_filename in ("Arif (1).png", "Arif (1).jpg", "Arif (1).webp"), download.suggested_filename
    data = open(download.path(), "rb").read()
    assert data[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xdb", b"RIFF"), data[:8]
    expect(page.locator(".toast.ok", has_text="Arif (1) downloaded")).to_be_visible()


def test_the_developer_view_has_its_own_address_with_ids_json_and_record_use(new_page, user, local_stack):
    page = new_page()
    pid = two_generated(page, local_stack, user)
    aid = card_id(page, "Arif (1)")
    page.locator(".avatar-card", has_text="Arif (1)").locator(".thumb").click()
    # Ids are not in the lightbox itself any more.
    expect(page.locator("#avatar-source")).to_be_visible()
    assert aid not in page.locator("dialog .detail-info").inner_text()
    page.click("#open-developer")
    expect(page).to_have_url(re.compile(rf"#/projects/{pid}/avatars/{aid}/developer$"))
    view = page.locator("#dev-view")
    expect(view).to_contain_text(aid)
    expect(view).to_contain_text(pid)
    assert f'"id": "{aid}"' in page.locator("#avatar-json").inner_text()
    expect(page.locator("#lightbox-image")).to_have_count(0)
    page.keyboard.press("ArrowRight")  # the arrows do not leave the developer view
    expect(page).to_have_url(re.compile(rf"/avatars/{aid}/developer$"))
    page.click("#record-usage")
    expect(page.locator(".avatar-card", has_text="Arif (1)").locator(".usage")).to_contain_text("Used 1×")
    expect(page.locator("#avatar-json")).to_contain_text('"usageCount": 1')
    # Reloading the developer address opens it again; Back to the picture returns to the lightbox's address.
    page.reload()
    expect(page.locator("dialog[open] #dev-view")).to_be_visible()
    page.click("#leave-developer")
    expect(page).to_have_url(re.compile(rf"#/projects/{pid}/avatars/{aid}$"))
    expect(page.locator("#lightbox-image")).to_be_visible()
    expect(page.locator("#open-developer")).to_be_focused()


def test_the_lightbox_and_its_developer_view_work_by_keyboard_alone(new_page, user, local_stack):
    page = new_page(accept_downloads=True)
    pid = two_generated(page, local_stack, user)
    second = card_id(page, "Arif (2)")
    page.locator(".avatar-card", has_text="Arif (1)").locator("button.thumb").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#edit-avatar")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(page).to_have_url(re.compile(rf"/avatars/{second}$"))
    page.locator("#download-avatar").focus()
    with page.expect_download() as done:
        page.keyboard.press("Enter")
    assert done.value.suggested_filename.startswith("Arif (2).")
    page.locator("#open-developer").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#leave-developer")).to_be_focused()
    expect(page).to_have_url(re.compile(rf"/avatars/{second}/developer$"))
    page.keyboard.press("Enter")
    expect(page.locator("#open-developer")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(page).to_have_url(re.compile(rf"#/projects/{pid}$"))
