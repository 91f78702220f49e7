"""The page's Export (issue 29 item 5) and "your user id" (issue 30 item 1) on the local stack: an
avatar's and a project's zip are made by the real worker and downloaded from the page; the page
reads an export's state with a growing pause and stops when the view is left; the daily limit and
a failure are said; the user id is shown and copied (clipboard API, and the fallback without it)."""
from __future__ import annotations

import hashlib
import json
import re
import zipfile
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, create_project, sign_in, uploaded_avatar

FILES = {"original.jpg", "thumbnail.jpg", "avatar.json", "usage.json", "usage.csv"}


def _downloaded_zip(page, link, tmp_path, name: str) -> zipfile.ZipFile:
    with page.expect_download() as info:
        link.click()
    path = tmp_path / name
    info.value.save_as(path)
    return zipfile.ZipFile(path)


def _folders(archive: zipfile.ZipFile) -> dict[str, set[str]]:
    """avatar id → the file names in its folder (`{safe name}-{avatar id}/…`)."""
    folders: dict[str, set[str]] = {}
    for name in archive.namelist():
        if "/" in name:
            folder, file = name.split("/", 1)
            folders.setdefault(folder.rsplit("-", 1)[-1], set()).add(file)
    return folders


def _check_manifest(archive: zipfile.ZipFile, avatar_ids: set[str]) -> None:
    """manifest.json names every other file of the zip with its SHA-256, and the avatars exported."""
    manifest = json.loads(archive.read("manifest.json"))
    listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    assert set(listed) == set(archive.namelist()) - {"manifest.json"}
    for path, sha256 in listed.items():
        assert hashlib.sha256(archive.read(path)).hexdigest() == sha256, path
    assert {a["id"] for a in manifest["avatars"]} == avatar_ids


def test_an_avatar_and_its_project_are_exported_from_the_page_and_their_zips_hold_the_files(new_page, user, tmp_path):
    page = new_page(accept_downloads=True)
    sign_in(page, user)
    create_project(page, "Export me")
    maya = uploaded_avatar(page, tmp_path, "maya")
    uploaded_avatar(page, tmp_path, "budi")
    ids = page.eval_on_selector_all('#avatar-grid .avatar-card[data-status="ready"]', "cs => cs.map(c => c.dataset.avatarId)")
    maya_id = maya.get_attribute("data-avatar-id")

    # The avatar, from its lightbox.
    maya.locator("button.thumb").click()
    expect(page.locator("#avatar-export")).to_be_visible()
    # An uploaded avatar has no prompt and no suggestions: those parts are left out, not printed "null".
    expect(page.locator("dialog[open] .avatar-detail")).not_to_contain_text("null")
    page.click("#export-avatar")
    row = page.locator("#avatar-export .export-row")
    expect(row).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(row.locator(".export-state")).to_have_text("Ready")
    link = row.get_by_role("link", name="Download zip")
    expect(link).to_be_visible()
    archive = _downloaded_zip(page, link, tmp_path, "maya.zip")
    folders = _folders(archive)
    assert set(folders) == {maya_id}, archive.namelist()
    assert FILES <= folders[maya_id], folders
    assert json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("/avatar.json"))))["id"] == maya_id
    _check_manifest(archive, {maya_id})

    # The project, from its page: the list holds both exports of this tab, newest first.
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    page.click("#export-project")
    rows = page.locator("#exports .export-row")
    expect(rows).to_have_count(2)
    project_row = rows.first
    expect(project_row).to_have_attribute("data-scope", "project")
    expect(project_row).to_have_attribute("data-status", "completed", timeout=60_000)
    archive = _downloaded_zip(page, project_row.get_by_role("link", name="Download zip"), tmp_path, "project.zip")
    folders = _folders(archive)
    assert set(folders) == set(ids), archive.namelist()
    for files in folders.values():
        assert FILES <= files
    _check_manifest(archive, set(ids))

    # A reload keeps the tab's exports (sessionStorage): the list and the lightbox find them again.
    page.reload()
    expect(page.locator("#exports .export-row")).to_have_count(2)
    expect(page.locator('#exports .export-row[data-scope="avatar"]')).to_have_attribute("data-status", "completed")


def _running(export_id: str, done: int, status: str = "running", **extra) -> dict:
    body = {"id": export_id, "scope": "project", "targetId": "x", "status": status, "progress": {"done": done, "total": 9},
            "downloadUrl": None, "downloadExpiresIn": None, "bytes": None, "errorCode": None, "errorMessage": None,
            "createdAt": None, "updatedAt": None, "completedAt": None, "expiresAt": None}
    body.update(extra)
    return body


def test_progress_is_read_with_a_growing_pause_and_stops_when_the_view_is_left(new_page, user):
    """The page's clock is Playwright's: paused, it moves only when the test says, so each read is
    seen to come exactly when it is due and not before."""
    page = new_page()
    page.clock.install()
    # A hidden tab, as the test says (headless Chromium's own tab is always visible).
    page.add_init_script("""Object.defineProperty(Document.prototype, 'visibilityState',
        { configurable: true, get() { return window.__hidden ? 'hidden' : 'visible'; } });""")
    sign_in(page, user)
    create_project(page, "Slow export")
    reads: list[str] = []
    mode = {"status": "running"}

    def stub(route):
        # The export's GET answers "running" (then "failed") whatever the worker did: the test holds time.
        if route.request.method != "GET":
            return route.fallback()
        export_id = route.request.url.rsplit("/", 1)[-1]
        reads.append(export_id)
        extra = {"errorCode": "timed_out"} if mode["status"] == "failed" else {}
        route.fulfill(json=_running(export_id, len(reads), mode["status"], **extra))

    page.route(re.compile(r".*/exports/exp[^/]*$"), stub)
    page.clock.pause_at(page.evaluate("Date.now()") + 50)

    def settled():
        # Every request the page sent before this one has been seen by the route handler.
        page.evaluate("fetch('config.json').then(r => r.text())")

    page.click("#export-project")
    count = page.locator("#exports .export-count")
    # Each read answers its own number as `done`: the row showing it means the page has the answer
    # and has set its next pause.
    expect(count).to_have_text("1 of 9 avatars")
    expect(page.locator("#exports progress")).to_have_attribute("value", "1")
    for n, pause in enumerate([1000, 1600, 2560, 4096], start=2):
        page.clock.run_for(pause - 100)
        settled()
        assert len(reads) == n - 1, f"read {n} came before its pause of {pause} ms"
        page.clock.run_for(150)
        expect(count).to_have_text(f"{n} of 9 avatars")
    assert len(reads) == 5

    # A hidden tab reads nothing; shown again, it reads at once.
    page.evaluate("window.__hidden = true")
    page.clock.run_for(120_000)
    settled()
    assert len(reads) == 5
    page.evaluate("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    expect(count).to_have_text("6 of 9 avatars")

    # Leaving the project ends the reads, however long the page stays open.
    page.click(".crumbs a")
    expect(page.locator("#project-grid")).to_be_visible()
    page.clock.run_for(120_000)
    settled()
    assert len(reads) == 6

    # Back on the project the list is there again and reading resumes; a failure is said with its reason.
    mode["status"] = "failed"
    page.go_back()
    row = page.locator("#exports .export-row")
    expect(row).to_have_attribute("data-status", "failed")
    expect(row.locator(".export-state")).to_have_text("Failed")
    expect(row.locator(".export-error")).to_have_text("It took too long and was stopped — try again.")
    expect(row.locator("progress")).to_be_hidden()
    page.clock.run_for(120_000)
    settled()
    assert len(reads) == 7  # an ended export is not read again

    # "Export again" starts a new export (a real POST), shown first in the list and read at once.
    mode["status"] = "running"
    row.get_by_role("button", name=re.compile("^Export again")).click()
    rows = page.locator("#exports .export-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-status", "running")
    expect(rows.nth(1)).to_have_attribute("data-status", "failed")
    assert len(reads) == 8 and reads[-1] != reads[0]


def test_a_download_url_near_its_end_is_signed_again_before_the_click_uses_it(new_page, user):
    """The API signs the zip's URL at each read, valid 300 s; the page's clock shows a click on a
    link read 280 s ago asking for a new URL first, and a click on a fresh one not asking."""
    page = new_page()
    page.clock.install()
    sign_in(page, user)
    create_project(page, "Campaign: May/June")
    reads: list[str] = []

    def stub(route):
        if route.request.method != "GET":
            return route.fallback()
        export_id = route.request.url.rsplit("/", 1)[-1]
        reads.append(export_id)
        origin = route.request.url.split("/api/")[0]
        route.fulfill(json=_running(export_id, 9, "completed", downloadUrl=f"{origin}/signed/{len(reads)}",
                                    downloadExpiresIn=300, bytes=2048))

    page.route(re.compile(r".*/exports/exp[^/]*$"), stub)
    page.route(re.compile(r".*/signed/\d+$"), lambda route: route.fulfill(
        body=b"PK\x05\x06" + b"\0" * 18, headers={"Content-Type": "application/zip"}))
    page.clock.pause_at(page.evaluate("Date.now()") + 50)
    page.click("#export-project")
    link = page.locator("#exports .export-download")
    expect(link).to_be_visible()
    expect(page.locator("#exports .export-count")).to_have_text("2 KB")
    with page.expect_download() as first:
        link.click()
    assert first.value.url.endswith("/signed/1") and len(reads) == 1
    assert first.value.suggested_filename == "Campaign- May-June.zip"

    page.clock.run_for(280_000)  # an ended export is not read meanwhile
    assert len(reads) == 1
    with page.expect_download() as second:
        link.click()
    assert second.value.url.endswith("/signed/2") and len(reads) == 2


def test_the_daily_limit_is_said_with_when_to_try_again(new_page, user, local_stack, tmp_path):
    page = new_page()
    sign_in(page, user)
    create_project(page, "Too many")
    card = uploaded_avatar(page, tmp_path, "sari")
    now = datetime.now(timezone.utc)
    for day in (now - timedelta(days=1), now, now + timedelta(days=1)):  # a run across midnight too
        local_stack.client("dynamodb").put_item(TableName=local_stack.outputs["TableName"], Item={
            "PK": {"S": f"U#{user}"}, "SK": {"S": "EXPORTS#" + day.strftime("%Y-%m-%d")}, "count": {"N": "20"}})
    page.click("#export-project")
    error = page.locator("#export-project-error")
    expect(error).to_have_text(re.compile(r"^You have started today's 20 exports — try again in (about )?\d+ (h|min|s)\.?$"))
    expect(page.locator("#exports .export-row")).to_have_count(0)
    expect(page.locator("#export-project")).to_be_enabled()
    card.locator("button.thumb").click()  # the same words in the lightbox, under its Export
    page.click("#export-avatar")
    expect(page.locator("#export-error")).to_have_text(re.compile(r"^You have started today's 20 exports — try again in "))
    expect(page.locator("#avatar-export .export-row")).to_have_count(0)


def test_the_user_id_is_shown_and_copied_with_the_clipboard(new_page, user):
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    sign_in(page, user)
    page.click("#account-button")
    expect(page.locator("#user-id")).to_have_value(user)
    page.click("#copy-user-id")
    expect(page.locator("#user-id-status")).to_have_text("Copied")
    expect(page.locator("#user-id-status")).to_have_attribute("role", "status")
    assert page.evaluate("navigator.clipboard.readText()") == user
    page.keyboard.press("Escape")

    # On a phone the header has no room for the button: the projects page has the same line.
    page.evaluate("navigator.clipboard.writeText('')")
    page.set_viewport_size(PHONE)
    expect(page.locator("#account-button")).to_be_hidden()
    expect(page.locator("#my-id")).to_have_text(user)
    page.click("#copy-my-id")
    expect(page.locator("#my-id-status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == user


def test_without_the_clipboard_api_the_id_is_copied_by_the_fallback(new_page, local_stack):
    page = new_page(locale="id-ID")
    # An older browser or a page the clipboard API is refused to: the copy command, seen by its event.
    page.add_init_script("""
        Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined });
        document.addEventListener('copy', () => {
          const f = document.activeElement;
          window.__copied = f && f.tagName === 'INPUT' ? f.value.slice(f.selectionStart, f.selectionEnd) : String(getSelection());
        });""")
    page.goto("/")
    token = local_stack.token("budi-santoso")  # a pasted token: the id is its `sub`
    page.fill("#paste-token", token)
    page.click("#use-token")
    expect(page.locator("#create-project")).to_be_visible()
    page.get_by_role("button", name="ID Anda").click()
    expect(page.locator("#user-id")).to_have_value("budi-santoso")
    page.click("#copy-user-id")
    expect(page.locator("#user-id-status")).to_have_text("Disalin")
    assert page.evaluate("window.__copied") == "budi-santoso"
    page.keyboard.press("Escape")
    page.evaluate("window.__copied = null")
    page.click("#copy-my-id")  # the projects page's line: its <code> is selected and copied
    expect(page.locator("#my-id-status")).to_have_text("Disalin")
    assert page.evaluate("window.__copied") == "budi-santoso"
