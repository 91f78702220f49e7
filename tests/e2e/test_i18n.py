"""English and Bahasa Indonesia (issue 28 B): the language follows the browser until the person picks
one (remembered), the API is asked in it, and no English is left on any view or dialog in Indonesian
(each checked by axe too)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import DESKTOP, create_project, sign_in, uploaded_avatar

WEB = Path(__file__).resolve().parents[2] / "web"


def catalogue(name: str) -> dict:
    text = (WEB / f"i18n-{name}.js").read_text(encoding="utf-8")
    body = text[text.index("export default {") + len("export default "):text.rindex("}") + 1]
    return json.loads(re.sub(r",\s*}$", "}", body.strip()))


def english_fragments() -> set[str]:
    """Pieces of English sentences (between placeholders) that Indonesian says differently."""
    en, id_ = catalogue("en"), catalogue("id")
    out = set()
    for key, message in en.items():
        forms = message.values() if isinstance(message, dict) else [message]
        other = id_[key].values() if isinstance(id_[key], dict) else [id_[key]]
        for text in forms:
            for piece in re.split(r"\{\w+\}", text):
                piece = piece.strip(" ·—().,:;“”…✨🎨←")
                if len(piece) >= 6 and " " in piece and not any(piece in o for o in other):
                    out.add(piece)
    return out


ENGLISH = english_fragments()


def english_left(page) -> list[str]:
    """English fragments in what the person sees or hears (text, labels, placeholders)."""
    seen = page.evaluate("""() => {
        const root = document.querySelector('dialog[open]') || document.body;
        const bits = [root.innerText];
        for (const el of root.querySelectorAll('[aria-label],[placeholder],[title],[alt]'))
            for (const a of ['aria-label', 'placeholder', 'title', 'alt']) if (el.getAttribute(a)) bits.push(el.getAttribute(a));
        return bits.join('\\n');
    }""")
    return sorted(f for f in ENGLISH if f in seen)


def check(page, where: str) -> None:
    assert english_left(page) == [], f"English left on {where}"
    assert_accessible(page, f"{where} (id)")
    page.screenshot(path=f"test-artifacts/e2e/view-{where}-id.png")


def test_the_browser_language_is_used_until_one_is_picked_and_then_remembered(new_page):
    page = new_page(locale="id-ID")
    page.goto("/")
    expect(page.locator("#dev-signin")).to_have_text("Masuk")
    expect(page.locator("html")).to_have_attribute("lang", "id")
    page.select_option("#language", "en")
    expect(page.locator("#dev-signin")).to_have_text("Sign in")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.reload()
    expect(page.locator("#dev-signin")).to_have_text("Sign in")  # the choice beats the browser's
    english = new_page(locale="en-GB")
    english.goto("/")
    expect(english.locator("#dev-signin")).to_have_text("Sign in")


def test_api_calls_ask_for_the_chosen_language(new_page, user):
    page = new_page(locale="id-ID")
    asked: list[str] = []
    page.on("request", lambda r: "/api/apps/avatar-creator/projects" in r.url and asked.append(r.headers.get("accept-language", "")))
    sign_in(page, user)
    expect(page.locator("#project-grid")).to_be_visible()
    assert asked and set(asked) == {"id"}
    page.select_option("#language", "en")
    expect(page.locator("#create-project")).to_have_text("Create project")
    assert asked[-1] == "en"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_view_and_dialog_in_indonesian_has_no_english_left(new_page, user, tmp_path, scheme):
    page = new_page(viewport=DESKTOP, locale="id-ID", color_scheme=scheme)
    page.goto("/")
    expect(page.locator("#dev-signin")).to_have_text("Masuk")
    check(page, f"signin-{scheme}")
    sign_in(page, user)
    expect(page.locator("#no-projects")).to_be_visible()
    check(page, f"projects-empty-{scheme}")
    create_project(page, "Kampanye Ramadan")
    expect(page.locator("#no-avatars")).to_be_visible()
    check(page, f"project-empty-{scheme}")
    uploaded_avatar(page, tmp_path, "dewi")
    expect(page.locator("#avatar-count")).to_have_text("1 avatar")
    check(page, f"project-{scheme}")
    page.locator(".avatar-card .thumb").first.click()
    expect(page.locator("#edit-avatar")).to_have_text("Ubah detail")
    check(page, f"avatar-{scheme}")
    page.click("#open-developer")
    expect(page.locator("#dev-view")).to_be_visible()
    check(page, f"avatar-developer-{scheme}")
    page.click("#leave-developer")
    page.click("#edit-avatar")
    check(page, f"avatar-edit-{scheme}")
    page.fill("#edit-persona-personality", "ceria")  # issue 29: History, with the version this edit makes
    page.click("#save-avatar")
    page.click("#history summary")
    expect(page.locator("#versions .version .version-cause")).to_have_text("diubah")
    expect(page.locator("#versions .restore-version")).to_have_text("Pulihkan")
    check(page, f"avatar-history-{scheme}")
    page.keyboard.press("Escape")
    page.click("#generate-button")
    expect(page.locator("#generate-title")).to_have_text("Buat avatar")
    check(page, f"generate-{scheme}")
    page.keyboard.press("Escape")
    page.click("#delete-project")
    expect(page.locator("#confirm-no")).to_have_text("Batal")
    check(page, f"confirm-{scheme}")
    page.keyboard.press("Escape")
    page.click("#stats-button")
    check(page, f"stats-{scheme}")
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    page.click("#members-button")  # issue 30: the Members dialog, with a member added
    page.fill("#member-id", "budi-santoso")
    page.click("#add-member")
    expect(page.locator('.member-row[data-user-id="budi-santoso"] select')).to_have_value("viewer")
    expect(page.locator("#add-member")).to_have_text("Tambah anggota")
    check(page, f"members-{scheme}")
    page.keyboard.press("Escape")
    uploaded_avatar(page, tmp_path, "sari")  # compare takes two
    page.click("#compare-mode")
    for box in page.locator(".compare-pick input").all():
        box.check()
    expect(page.locator("#compare-open")).to_have_text("Bandingkan yang dipilih")
    check(page, f"compare-picking-{scheme}")
    page.click("#compare-open")
    expect(page.locator(".compare-col")).to_have_count(2)
    page.click("#compare-numbers summary")
    check(page, f"compare-{scheme}")
    page.click("#webhooks-link")
    expect(page.locator("h1")).to_have_text("Webhook")
    check(page, f"webhooks-{scheme}")
    page.click("#add-webhook")
    check(page, f"webhook-add-{scheme}")
