"""Browser fixtures: one Chromium per session against the session's local stack; a fresh page
(and so a fresh sign-in) per test. Every test fails on an uncaught page error or a console error."""
from __future__ import annotations

import uuid

import pytest

from tests.support.browser import chromium_path

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


def watch_errors(page, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    # The network log of an expected 4xx (a 429 the page explains, a 401 for a bad token) is not a
    # script error; anything else logged as an error is.
    page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
            and errors.append(f"console: {msg.text}"))


@pytest.fixture
def new_page(browser, local_stack):
    """Pages in contexts of their own (viewport, touch…); all are checked for errors at the end."""
    contexts, errors = [], []

    def make(viewport=DESKTOP, **options):
        context = browser.new_context(viewport=viewport, base_url=local_stack.outputs["ApiUrl"], **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        # Playwright turns file-chooser interception on by a fire-and-forget message when the
        # first "filechooser" listener is added; added inside expect_file_chooser(), a key press
        # sent right after can reach Chromium first, and the chooser then opens unseen. A
        # listener held for the page's life turns interception on long before any test needs it.
        page.on("filechooser", lambda _chooser: None)
        watch_errors(page, errors)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def user() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


def sign_in(page, user: str) -> None:
    page.goto("/")
    page.fill("#dev-user", user)
    page.click("#dev-signin")
    page.wait_for_selector("#create-project")


def create_project(page, name: str) -> None:
    page.fill("#new-project-name", name)
    page.click("#create-project")
    page.wait_for_selector("#project-title")


def upload(page, path) -> None:
    page.set_input_files("#file-input", str(path))


def uploaded_avatar(page, tmp_path, name="maya"):
    """Upload a 600×800 photo named `name` and wait for its ready card."""
    from playwright.sync_api import expect

    from tests.support import images as img

    photo = tmp_path / f"{name}.jpg"
    photo.write_bytes(img.jpeg(600, 800))
    upload(page, photo)
    card = page.locator('.avatar-card[data-status="ready"]', has_text=name)
    expect(card).to_have_count(1, timeout=20_000)
    return card
