"""Issue 28 (the page as a gallery): thumbnails that outlive their URLs, one attribute vocabulary, Back
closing the dialog, a visible focus ring on thumbnails, a batch in order, the safe choice focused."""
from __future__ import annotations

import io
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, create_project, sign_in, uploaded_avatar, watch_errors
from tests.support import images as img

API = "/api/apps/avatar-creator"
SHORT_EXPIRY = 60  # seconds: the short-lived URLs of the expiry tests


@pytest.fixture(scope="module")
def short_url_stack(tmp_path_factory):
    """A stack of its own whose image URLs live 60 s (IMAGE_URL_EXPIRY_SECONDS), not 900."""
    from tests.support.local_stack import LocalStack

    stack = LocalStack(tmp_path_factory.mktemp("short-urls"), env={"IMAGE_URL_EXPIRY_SECONDS": str(SHORT_EXPIRY)}).start()
    try:
        yield stack
    finally:
        stack.stop()


def project_id(page) -> str:
    return page.evaluate("location.hash").split("/")[-1]


LIST = re.compile(r"/projects/[\w-]+/avatars\?")


def test_thumbnails_are_re_signed_before_their_urls_expire(browser, short_url_stack, user, tmp_path):
    context = browser.new_context(viewport=DESKTOP, base_url=short_url_stack.outputs["ApiUrl"])
    context.set_default_timeout(15_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        watch_errors(page, errors)
        # The page's clock, not a sleep: it runs at real speed until the test moves it forward.
        page.clock.install()
        sign_in(page, user)
        create_project(page, "Left open")
        thumb = uploaded_avatar(page, tmp_path, "Tari").locator(".thumb img")
        assert f"X-Amz-Expires={SHORT_EXPIRY}" in thumb.get_attribute("src")
        # WHEN the page has been open as long as its URLs live
        with page.expect_response(lambda r: LIST.search(r.url) is not None) as listed:
            page.clock.fast_forward(SHORT_EXPIRY * 1000)
        # THEN it re-read the list before they expired, and the thumbnail uses the new URL (and loads)
        fresh = next(a for a in listed.value.json()["items"] if a["name"] == "Tari")
        expect(thumb).to_have_attribute("src", fresh["thumbnailUrl"])
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    finally:
        context.close()
    assert not errors, errors


def test_a_thumbnail_that_fails_to_load_re_signs_itself_once(new_page, user, tmp_path):
    page = new_page()
    sign_in(page, user)
    create_project(page, "Expired")
    avatar_id = uploaded_avatar(page, tmp_path, "Bayu").get_attribute("data-avatar-id")
    # Another browser (no image cache) opens the project; its first thumbnail request "has expired".
    later = new_page()
    refused: list[str] = []

    def expired(route):
        refused.append(route.request.url)
        route.fulfill(status=403, body="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")

    sign_in(later, user)
    # The project card's mosaic shows the face first; the route is set after it (it disables the cache).
    later.wait_for_function("() => { const i = document.querySelector('.mosaic img'); return i && i.complete && i.naturalWidth > 0; }")
    later.route(re.compile(r"/thumbs/"), expired, times=1)
    with later.expect_response(lambda r: r.url.endswith(f"/avatars/{avatar_id}")):
        later.locator(".project-card", has_text="Expired").click()
    thumb = later.locator(f'.avatar-card[data-avatar-id="{avatar_id}"] .thumb img')
    expect(thumb).to_have_attribute("data-resigned", "1")
    # A broken image is "complete" too: wait until the re-signed one has really loaded.
    later.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert len(refused) == 1


def test_presets_filters_and_badges_share_one_vocabulary(page, user, local_stack, tmp_path):
    sign_in(page, user)
    create_project(page, "Words")
    # Every preset's gender, age range and style is a value the page's filters and forms offer.
    words = page.evaluate("async () => (await import('./core.js')).ATTRIBUTES")
    token = local_stack.token(user)
    presets, cursor = [], None
    while True:
        resp = local_stack.request("GET", f"{API}/presets?limit=100" + (f"&cursor={cursor}" if cursor else ""), token=token)
        presets += resp.json()["items"]
        cursor = resp.json().get("nextCursor")
        if not cursor:
            break
    assert presets
    for preset in presets:
        for key in ("gender", "ageRange", "style"):
            assert preset[key] is None or preset[key] in words[key], (preset["id"], key, preset[key])
    # An avatar sent with the presets' old words is found by "Sporty" and badged in words.
    card = uploaded_avatar(page, tmp_path, "Dewi")
    avatar_id = card.get_attribute("data-avatar-id")
    resp = local_stack.request("PUT", f"{API}/avatars/{avatar_id}", {"style": "sports", "ageRange": "young_adult"}, token=token)
    assert resp.status == 200, resp
    page.select_option("#filter-style", "sporty")
    expect(page.locator("#avatar-grid .avatar-card")).to_have_count(1)
    expect(page.locator("#avatar-grid .avatar-card .badge")).to_contain_text(["Young adult", "Sporty"])


def test_back_closes_the_avatar_dialog_and_stays_on_the_project(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Back")
    card = uploaded_avatar(page, tmp_path, "Sari")
    card.locator(".thumb").click()
    expect(page.locator("dialog[open] #dialog-title")).to_have_text("Sari")
    page.go_back()
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(page.locator("#project-title")).to_have_text("Back")
    # A dialog closed by its ✕ leaves no entry behind: the next Back goes to the projects list.
    card.locator(".thumb").click()
    page.locator("dialog[open]").get_by_role("button", name="Close").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    page.wait_for_function("() => !history.state?.dialog")  # its entry is gone (the page's own Back ran)
    page.go_back()
    expect(page.locator("#create-project")).to_be_visible()
    expect(page.locator("dialog[open]")).to_have_count(0)


def test_a_focused_thumbnail_shows_its_focus_ring_over_the_image(page, user, tmp_path):
    from PIL import Image

    sign_in(page, user)
    create_project(page, "Focus")
    thumb = uploaded_avatar(page, tmp_path, "Wulan").locator(".thumb")
    thumb.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # by keyboard, so :focus-visible applies
    expect(thumb).to_be_focused()
    shot = Image.open(io.BytesIO(thumb.screenshot(animations="disabled", path="test-artifacts/e2e/thumb-focus.png"))).convert("RGB")
    focus = page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--focus').trim()")
    want = tuple(int(focus[i:i + 2], 16) for i in (1, 3, 5))
    w, h = shot.size
    for x, y in ((1, h // 2), (w - 2, h // 2), (w // 2, 1), (w // 2, h - 2)):  # each edge, inside the button
        got = shot.getpixel((x, y))
        assert all(abs(a - b) <= 40 for a, b in zip(got, want)), (x, y, got, want)


def test_a_batch_of_four_keeps_its_order_after_a_reload(page, user, local_stack):
    sign_in(page, user)
    create_project(page, "Batch")
    resp = local_stack.request("POST", f"{API}/projects/{project_id(page)}/avatars/generate",
                               {"prompt": "smiling batik designer in a bright studio", "name": "Dewi", "numImages": 4},
                               token=local_stack.token(user))
    assert resp.status == 202, resp
    names = page.locator('#avatar-grid .avatar-card[data-status="ready"] h3 .ellipsis')
    expect(names).to_have_count(4, timeout=60_000)
    expect(names).to_have_text(["Dewi (1)", "Dewi (2)", "Dewi (3)", "Dewi (4)"])
    page.reload()
    expect(names).to_have_text(["Dewi (1)", "Dewi (2)", "Dewi (3)", "Dewi (4)"])


def test_no_match_offers_clear_filters_and_rejected_uploads_stay_under_a_filter(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Filters")
    photo, bad = tmp_path / "rina.jpg", tmp_path / "notes.png"
    photo.write_bytes(img.jpeg(600, 800))
    bad.write_bytes(img.text_as_png())
    page.set_input_files("#file-input", [str(photo), str(bad)])
    expect(page.locator('#avatar-grid .avatar-card[data-status="ready"]')).to_have_count(1, timeout=20_000)
    expect(page.locator('#rejected .avatar-card')).to_have_count(1, timeout=20_000)
    page.select_option("#filter-style", "sporty")
    expect(page.locator("#no-avatars")).to_contain_text("No avatars match")
    expect(page.locator("#rejected")).to_be_visible()
    expect(page.locator('#rejected .avatar-card')).to_have_count(1)
    page.click("#clear-filters")
    expect(page.locator("#filter-style")).to_have_value("")
    expect(page.locator('#avatar-grid .avatar-card[data-status="ready"]')).to_have_count(1)
    expect(page.locator("#search")).to_be_focused()


@pytest.mark.parametrize("viewport", [DESKTOP, {"width": 390, "height": 844}], ids=["desktop", "phone"])
def test_restyled_names_are_not_cut_to_one_line(new_page, user, tmp_path, viewport):
    page = new_page(viewport)
    sign_in(page, user)
    create_project(page, "Names")
    card = uploaded_avatar(page, tmp_path, "Rizky · restyled watercolor")
    name = card.locator("h3 .ellipsis")
    expect(name).to_have_text("Rizky · restyled watercolor")
    assert name.evaluate("el => el.scrollHeight <= el.clientHeight + 1 && el.scrollWidth <= el.clientWidth"), \
        "the name is cut"


def test_an_upload_batch_says_its_outcome_in_one_toast(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Batch upload")
    files = []
    for name in ("ayu", "budi", "citra"):
        files.append(tmp_path / f"{name}.jpg")
        files[-1].write_bytes(img.jpeg(600, 800))
    files.append(tmp_path / "notes.png")
    files[-1].write_bytes(img.text_as_png())
    page.set_input_files("#file-input", [str(f) for f in files])
    toast = page.locator(".toast", has_text="ready")
    expect(toast).to_have_text("3 photos ready · 1 rejected — see why on its card", timeout=30_000)
    expect(toast).to_have_count(1)


def test_stats_of_a_new_account_show_the_next_step_not_zeros(page, user):
    sign_in(page, user)
    page.click("#stats-button")
    expect(page.locator("#stats-empty")).to_contain_text("Nothing to count yet")
    expect(page.locator("#stats .tile")).to_have_count(0)


def test_the_faces_start_near_the_top_and_the_whole_page_takes_drops(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Fold")
    expect(page.locator("#dropzone")).to_be_visible()  # an empty project offers it
    uploaded_avatar(page, tmp_path, "Lestari")
    expect(page.locator("#dropzone")).to_be_hidden()  # then the grid has its room
    top = page.locator("#avatar-grid").bounding_box()["y"]
    assert top < 320, f"the grid starts {top:.0f} px down at 1280×900"
    # A photo dropped anywhere on the project page is uploaded to it.
    page.evaluate("""async (bytes) => {
        const file = new File([new Uint8Array(bytes)], 'bima.jpg', { type: 'image/jpeg' });
        const data = new DataTransfer();
        data.items.add(file);
        const target = document.querySelector('#avatar-grid');
        for (const type of ['dragenter', 'dragover', 'drop'])
            target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    }""", list(img.jpeg(600, 800)))
    expect(page.locator('.avatar-card[data-status="ready"]', has_text="bima")).to_have_count(1, timeout=20_000)
    expect(page.locator("body")).not_to_have_class(re.compile("dragging"))


def test_cards_are_image_first_with_actions_on_hover_and_focus(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Cards")
    card = uploaded_avatar(page, tmp_path, "Putri")
    expect(card).not_to_contain_text("No attributes yet")
    expect(card).not_to_contain_text("Not used yet")
    page.mouse.move(1, 1)
    actions = card.locator(".card-actions")
    expect(actions).to_have_css("opacity", "0")
    card.locator(".thumb").focus()
    page.keyboard.press("Tab")  # to Edit, by keyboard
    expect(card.get_by_role("button", name="Edit Putri")).to_be_focused()
    expect(actions).to_have_css("opacity", "1")


def test_a_tile_per_image_holds_its_place_until_its_avatar_lands(page, user):
    sign_in(page, user)
    create_project(page, "Tiles")
    page.click("#generate-button")
    page.fill("#gen-prompt", "smiling batik designer in a bright studio")
    page.fill("#gen-name", "Dewi")
    page.select_option("#gen-count", "3")
    page.click("#start-generation")
    # At once: three tiles in the grid where the pictures will land, each with its own state.
    tiles = page.locator("#avatar-grid .pending-tile")
    expect(tiles).to_have_count(3)
    expect(tiles.locator("h3")).to_have_text(["Dewi (1 of 3)", "Dewi (2 of 3)", "Dewi (3 of 3)"])
    expect(page.locator("#no-avatars")).to_have_count(0)
    # Then each tile becomes its avatar, in order, and no tile is left.
    names = page.locator('#avatar-grid .avatar-card[data-status="ready"] h3 .ellipsis')
    expect(names).to_have_text(["Dewi (1)", "Dewi (2)", "Dewi (3)"], timeout=60_000)
    expect(tiles).to_have_count(0)


def test_the_preset_gallery_is_a_strip_of_thumbnails(page, user):
    sign_in(page, user)
    create_project(page, "Strip")
    page.click("#generate-button")
    strip = page.locator("#generate-panel .presets")
    expect(strip.locator(".preset").first).to_be_visible()
    box = strip.evaluate("el => ({ display: getComputedStyle(el).display, overflow: getComputedStyle(el).overflowX, "
                         "scrolls: el.scrollWidth > el.clientWidth, rows: new Set([...el.children].map(c => c.offsetTop)).size })")
    assert box == {"display": "flex", "overflow": "auto", "scrolls": True, "rows": 1}, box


def test_a_long_webhook_url_breaks_at_its_slashes_on_a_phone(new_page, user, local_stack):
    page = new_page({"width": 390, "height": 844})
    url = "http://127.0.0.1:9/api/v2/integrations/avatar-creator/webhooks/receive-signed-events?tenant=lumiku-marketing"
    resp = local_stack.request("POST", f"{API}/webhooks", {"url": url}, token=local_stack.token(user))
    assert resp.status == 201, resp
    sign_in(page, user)
    page.click("#webhooks-link")
    title = page.locator(".webhook-card .webhook-url").first
    expect(title).to_have_text(url)
    assert title.locator("wbr").count() >= 8
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_avatar_dialog_steps_with_arrow_keys_and_copies_prompt_and_seed(new_page, user, local_stack):
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, user)
    create_project(page, "Steps")
    resp = local_stack.request("POST", f"{API}/projects/{project_id(page)}/avatars/generate",
                               {"prompt": "calm engineer at a standing desk", "name": "Arif", "numImages": 2, "seed": 7},
                               token=local_stack.token(user))
    assert resp.status == 202, resp
    names = page.locator('#avatar-grid .avatar-card[data-status="ready"] h3 .ellipsis')
    expect(names).to_have_text(["Arif (1)", "Arif (2)"], timeout=60_000)
    page.locator(".avatar-card", has_text="Arif (1)").locator(".thumb").click()
    expect(page.locator("#dialog-title")).to_have_text("Arif (1)")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#dialog-title")).to_have_text("Arif (2)")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#dialog-title")).to_have_text("Arif (1)")
    page.get_by_role("button", name="Copy Seed").click()
    expect(page.locator(".toast.ok", has_text="Seed copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "7"
