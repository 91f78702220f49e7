"""The avatar dialog's History and lineage (issue 29 item 5) on the local stack: versions newest first
with who, when, why and each field before → after; Restore for editors (confirmed, once: a second
restore of the same values says so and writes nothing); Load more; a viewer sees History without
Restore; a restyle names its source and the source lists it."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import create_project, sign_in, uploaded_avatar
from tests.e2e.test_members_page import api, person, project_id


def _edit(page, **fields) -> None:
    page.click("#edit-avatar")
    expect(page.locator("#avatar-form")).to_be_visible()
    for selector, value in fields.items():
        page.fill(f"#edit-{selector.replace('_', '-')}", value)
    page.click("#save-avatar")
    expect(page.locator("#avatar-form")).to_have_count(0)


def _open_history(page) -> None:
    page.click("#history summary")
    expect(page.locator("#versions .version, #no-versions").first).to_be_visible()


def _change(page, version: int, field: str):
    return page.locator(f'#versions .version[data-version="{version}"] .change[data-field="{field}"]')


def test_two_edits_show_as_versions_and_restoring_the_first_brings_its_values_back_once(page, user, tmp_path, local_stack):
    sign_in(page, user)
    create_project(page, "Riwayat")
    card = uploaded_avatar(page, tmp_path, "maya")
    card.locator("button.thumb").click()
    _edit(page, name="Maya Putri", persona_personality="cheerful")
    _edit(page, name="Maya P.", persona_personality="calm")
    expect(page.locator("#dialog-title")).to_have_text("Maya P.")

    _open_history(page)
    versions = page.locator("#versions > .version")
    expect(versions).to_have_count(2)
    expect(versions.first).to_have_attribute("data-version", "2")  # newest first
    expect(_change(page, 2, "name")).to_have_text("Name: Maya Putri → Maya P.")
    expect(_change(page, 2, "personaPersonality")).to_have_text("Personality: cheerful → calm")
    expect(_change(page, 1, "name")).to_have_text("Name: maya → Maya Putri")
    expect(_change(page, 1, "personaPersonality")).to_have_text("Personality: (empty) → cheerful")
    expect(versions.first.locator(".version-by")).to_have_text("you")
    expect(versions.first.locator(".version-cause")).to_have_text("edited")
    assert_accessible(page, "the avatar's history")

    # Restore asks first, with Cancel focused; cancelling restores nothing.
    first = page.locator('#versions .version[data-version="1"]')
    first.get_by_role("button", name="Restore version 1").click()
    expect(first.locator(".cancel-restore")).to_be_focused()
    first.locator(".cancel-restore").click()
    expect(versions).to_have_count(2)
    restores = []
    page.on("request", lambda r: r.url.endswith("/versions/1/restore") and restores.append(r))
    with page.expect_response(re.compile(r"/versions/1/restore$")) as answer:
        first.get_by_role("button", name="Restore version 1").click()
        first.locator(".confirm-restore").dblclick()  # a double click sends one request
    assert answer.value.status == 200 and answer.value.json()["version"]["version"] == 3
    expect(page.locator("#dialog-title")).to_have_text("Maya Putri")
    expect(page.locator(".detail-info")).to_contain_text("cheerful")  # the facts show the restored values
    expect(versions).to_have_count(3)
    expect(versions.first).to_have_attribute("data-version", "3")
    expect(versions.first.locator(".version-cause")).to_have_text("restored from version 1")
    expect(_change(page, 3, "name")).to_have_text("Name: Maya P. → Maya Putri")
    expect(page.locator("#versions-status")).to_have_text("Restored version 1")
    assert len(restores) == 1
    expect(page.locator(".avatar-card h3", has_text="Maya Putri")).to_have_count(1)  # the grid follows

    # The same restore again changes nothing: it says so, and no version is written.
    with page.expect_response(re.compile(r"/versions/1/restore$")) as again:
        first.get_by_role("button", name="Restore version 1").click()
        first.locator(".confirm-restore").click()
    assert again.value.json()["version"] is None
    expect(page.locator("#versions-status")).to_contain_text("Already like this")
    expect(versions).to_have_count(3)

    # An edit while History is open shows at its top; past a page, Load more reads the rest.
    aid = page.locator("#dialog").get_attribute("data-avatar-id")
    _edit(page, persona_personality="warm")
    expect(versions.first).to_have_attribute("data-version", "4")
    for n in range(8):
        assert api(local_stack, "PUT", f"/avatars/{aid}", user, {"personaAge": 20 + n}).status == 200
    page.keyboard.press("Escape")
    page.locator(".avatar-card", has_text="Maya Putri").locator("button.thumb").click()
    _open_history(page)
    expect(versions).to_have_count(10)
    expect(versions.first).to_have_attribute("data-version", "12")
    page.click("#versions-more")
    expect(versions).to_have_count(12)
    expect(versions.last).to_have_attribute("data-version", "1")
    expect(page.locator("#versions-more")).to_be_hidden()


def test_a_viewer_sees_the_history_with_who_changed_it_but_no_restore(new_page, user, tmp_path, local_stack):
    owner, viewer = new_page(), new_page()
    budi = person("budi")
    sign_in(owner, user)
    create_project(owner, "Dilihat")
    pid = project_id(owner)
    card = uploaded_avatar(owner, tmp_path, "rina")
    aid = card.get_attribute("data-avatar-id")
    assert api(local_stack, "PUT", f"/avatars/{aid}", user, {"personaPersonality": ["brave"]}).status == 200
    assert api(local_stack, "POST", f"/projects/{pid}/members", user, {"userId": budi, "role": "viewer"}).status == 201

    sign_in(viewer, budi)
    viewer.goto(f"/#/projects/{pid}")
    viewer.locator(".avatar-card", has_text="rina").locator("button.thumb").click()
    _open_history(viewer)
    version = viewer.locator("#versions > .version")
    expect(version).to_have_count(1)
    expect(version.locator(".version-by")).to_have_text(user)  # the owner, by id: not "you"
    expect(version.locator(".change")).to_have_text("Personality: (empty) → brave")
    expect(viewer.locator("#history button.restore-version")).to_have_count(0)

    # The owner, on the same avatar, has the Restore button.
    card.locator("button.thumb").click()
    _open_history(owner)
    expect(owner.locator("#versions > .version").first.locator(".version-by")).to_have_text("you")
    expect(owner.get_by_role("button", name="Restore version 1")).to_be_visible()


def test_a_restyle_names_its_source_and_the_source_lists_it(page, user, tmp_path):
    sign_in(page, user)
    create_project(page, "Turunan")
    source = uploaded_avatar(page, tmp_path, "maya")
    source.locator("button.thumb").click()
    expect(page.locator("#lineage")).to_have_count(0)  # an upload has neither source nor derivatives
    page.click("#restyle-avatar")
    page.get_by_role("button", name="Watercolor").click()
    page.click("#start-restyle")
    restyled = page.locator('.avatar-card[data-status="ready"][data-source="image_to_image"]')
    expect(restyled).to_have_count(1, timeout=30_000)
    restyled_id = restyled.get_attribute("data-avatar-id")
    restyled.locator("button.thumb").click()
    expect(page.locator("#lineage-source")).to_have_text("Restyled from “maya”")
    assert_accessible(page, "a restyle's lineage")
    page.locator("#lineage-source a").click()  # opens the source in the same dialog
    expect(page.locator("#dialog-title")).to_have_text("maya")
    derivative = page.locator(f'#derivatives .derivative[data-avatar-id="{restyled_id}"]')
    expect(derivative).to_have_count(1)
    expect(derivative).to_contain_text("maya · restyled")
    expect(derivative.locator("img")).to_have_count(1)
    expect(page.locator("#derivatives-more")).to_have_count(0)  # one derivative: no "and more"
    derivative.locator("a").click()
    expect(page.locator("#lineage-source")).to_be_visible()

    # Once the source is deleted, the restyle says so instead of a link.
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Delete maya", exact=True).click()
    page.click("#confirm-yes")
    expect(page.locator(".avatar-card")).to_have_count(1)
    page.locator(".avatar-card").locator("button.thumb").click()
    expect(page.locator("#lineage-source")).to_contain_text("source deleted")
    expect(page.locator("#lineage-source a")).to_have_count(0)
