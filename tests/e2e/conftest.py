"""Browser fixtures: one Chromium per session against the session's local stack; a fresh page
(and so a fresh sign-in) per test."""
from __future__ import annotations

import uuid

import pytest

from tests.support.browser import chromium_path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, local_stack):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=local_stack.outputs["ApiUrl"])
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


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
