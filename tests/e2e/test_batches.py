"""Issue 28 item 3: generations land where they will appear. The images of one generation sit together,
in order, under their prompt (after a reload too), and each generated picture offers Keep (the default:
it only puts the choice away, remembered), Discard (deletes it, after a confirmation with Cancel
focused) and Vary (two variations, whose tiles appear in the grid)."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import DESKTOP, PHONE, create_project, sign_in, uploaded_avatar

API = "/api/apps/avatar-creator"
PROMPT = "smiling batik designer in a bright studio"
NAMES = ["Dewi (1)", "Dewi (2)", "Dewi (3)"]


def start_batch(page, local_stack, user, n=3) -> str:
    """Three images of one generation, started by another client (the page finds them by polling)."""
    project_id = page.evaluate("location.hash").split("/")[-1]
    resp = local_stack.request("POST", f"{API}/projects/{project_id}/avatars/generate",
                               {"prompt": PROMPT, "name": "Dewi", "numImages": n}, token=local_stack.token(user))
    assert resp.status == 202, resp
    return resp.json()["id"]


def batch_names(page):
    return page.locator('#avatar-grid .batch .avatar-card[data-status="ready"] h3 .ellipsis')


def test_a_batch_of_three_shows_together_in_order_under_its_prompt_after_a_reload(page, user, local_stack, tmp_path):
    sign_in(page, user)
    create_project(page, "Batches")
    uploaded_avatar(page, tmp_path, "Rina")  # older, and not generated: it stays a card of its own
    generation_id = start_batch(page, local_stack, user)
    batch = page.locator(f'#avatar-grid .batch[data-generation-id="{generation_id}"]')
    names = batch_names(page)

    def check():
        expect(names).to_have_text(NAMES, timeout=60_000)
        expect(page.locator("#avatar-grid .batch")).to_have_count(1)
        caption = batch.locator(".batch-caption")
        expect(caption).to_contain_text(PROMPT)
        expect(caption).to_have_attribute("title", re.compile(re.escape(PROMPT)))  # all of it, however it is cut
        expect(batch).to_have_attribute("aria-label", re.compile(re.escape(PROMPT)))
        # Newest first around it: the batch, then the older upload, which is no part of it.
        order = page.evaluate("""() => [...document.querySelector('#avatar-grid').children]
            .map(c => c.classList.contains('batch') ? 'batch' : c.querySelector('h3')?.textContent.trim())""")
        assert order == ["batch", "Rina"], order
        # The caption sits above its three pictures, which share a row.
        top = caption.bounding_box()
        boxes = [c.bounding_box() for c in batch.locator(".avatar-card").all()]
        assert all(b["y"] >= top["y"] + top["height"] for b in boxes), (top, boxes)
        assert len({round(b["y"]) for b in boxes}) == 1 and [b["x"] for b in boxes] == sorted(b["x"] for b in boxes), boxes
        # The caption is one line, cut with an ellipsis, never wider than the grid.
        assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]

    check()
    page.reload()
    check()
    # The choice shows on keyboard focus, and the grid with it passes axe, light and dark.
    first = batch.locator(".avatar-card").first
    first.locator(".thumb").focus()
    page.keyboard.press("Tab")
    expect(first.get_by_role("button", name="Keep Dewi (1)")).to_be_focused()
    expect(first.locator(".choice")).to_have_css("opacity", "1")
    for viewport, scheme in [(DESKTOP, "light"), (DESKTOP, "dark"), (PHONE, "dark"), (PHONE, "light")]:
        page.set_viewport_size(viewport)
        page.emulate_media(color_scheme=scheme)
        # Colours change with a transition: check the settled page, not a mix of the two themes.
        page.wait_for_function("() => !document.getAnimations().some(a => a instanceof CSSTransition && a.playState === 'running')")
        expect(first.locator(".choice")).to_have_css("opacity", "1")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        assert_accessible(page, f"a batch with keep, discard and vary ({scheme}, {viewport['width']} px)")
    # On a phone (two columns) the third picture wraps under the first two, still inside its batch.
    boxes = [c.bounding_box() for c in batch.locator(".avatar-card").all()]
    assert boxes[0]["y"] == boxes[1]["y"] < boxes[2]["y"] and boxes[2]["x"] == boxes[0]["x"], boxes


def test_discard_deletes_one_picture_after_a_confirmation_and_the_batch_closes_the_gap(page, user, local_stack):
    sign_in(page, user)
    create_project(page, "Discard")
    start_batch(page, local_stack, user)
    names = batch_names(page)
    expect(names).to_have_text(NAMES, timeout=60_000)
    expect(page.locator("#avatar-count")).to_have_text("3 avatars")
    second = page.locator(".avatar-card", has_text="Dewi (2)")
    second.hover()
    second.get_by_role("button", name="Discard Dewi (2)").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Discard “Dewi (2)”?")
    expect(page.locator("#confirm-no")).to_be_focused()  # the safe choice
    page.click("#confirm-yes")
    expect(names).to_have_text(["Dewi (1)", "Dewi (3)"])
    expect(page.locator("#avatar-count")).to_have_text("2 avatars")
    # Side by side: the gap is closed. The focus went on to the next picture.
    boxes = [c.bounding_box() for c in page.locator("#avatar-grid .batch .avatar-card").all()]
    assert boxes[1]["x"] - (boxes[0]["x"] + boxes[0]["width"]) < 40, boxes
    expect(page.locator(".avatar-card", has_text="Dewi (3)").locator(".thumb")).to_be_focused()
    # Gone on the server too: a reload shows the same two, in order, still under the prompt.
    page.reload()
    expect(names).to_have_text(["Dewi (1)", "Dewi (3)"])
    expect(page.locator("#avatar-count")).to_have_text("2 avatars")


def test_keep_puts_the_choice_away_for_good_and_vary_starts_variations_whose_tiles_appear(page, user, local_stack):
    sign_in(page, user)
    create_project(page, "Keep and vary")
    start_batch(page, local_stack, user)
    expect(batch_names(page)).to_have_text(NAMES, timeout=60_000)
    first = page.locator(".avatar-card", has_text="Dewi (1)")
    # Keep, by keyboard: the choice goes, the focus stays on the picture.
    first.locator(".thumb").focus()
    page.keyboard.press("Tab")
    expect(first.get_by_role("button", name="Keep Dewi (1)")).to_be_focused()
    page.keyboard.press("Enter")
    expect(first.locator(".choice")).to_have_count(0)
    expect(first.locator(".thumb")).to_be_focused()
    page.reload()
    expect(batch_names(page)).to_have_text(NAMES)
    expect(first.locator(".choice")).to_have_count(0)
    expect(page.locator("#avatar-grid .avatar-card .choice")).to_have_count(2)  # the other two still offer it
    # Vary: two variation jobs, a tile each in the grid (seen by an observer: a fast job may land at once),
    # then their pictures.
    page.evaluate("""() => {
        window.tilesSeen = new Set();
        const note = () => document.querySelectorAll('#avatar-grid .pending-tile').forEach(t => window.tilesSeen.add(t.dataset.generationId));
        new MutationObserver(note).observe(document.querySelector('#avatar-grid'), { childList: true, subtree: true });
    }""")
    second = page.locator(".avatar-card", has_text="Dewi (2)")
    second.hover()
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/variations")) as sent:
        second.get_by_role("button", name="Vary Dewi (2)").click()
    assert sent.value.headers.get("idempotency-key"), sent.value.headers
    assert sent.value.post_data_json == {"count": 2}
    expect(page.locator(".toast", has_text="2 variations started")).to_be_visible()
    page.wait_for_function("() => window.tilesSeen.size === 2")
    variations = page.locator('#avatar-grid .avatar-card[data-status="ready"]', has_text="Dewi (2) · variation")
    expect(variations).to_have_count(2, timeout=60_000)
    expect(page.locator("#avatar-grid .pending-tile")).to_have_count(0)
    expect(page.locator("#avatar-count")).to_have_text("5 avatars")
