"""Errors said in words where the person is looking, the signed-out view, and no uncaught errors
(the page fixture fails any test with a page error or a console error)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import create_project, sign_in


def _fill_active_quota(local_stack, user: str, n: int = 5) -> None:
    """The user already has n generations running (the counter the API's quota condition reads)."""
    local_stack.client("dynamodb").update_item(
        TableName=local_stack.outputs["TableName"], Key={"PK": {"S": f"U#{user}"}, "SK": {"S": "STATS"}},
        UpdateExpression="SET activeGenerations = :n", ExpressionAttributeValues={":n": {"N": str(n)}})


def _on_top(page, selector: str) -> bool:
    """The element is drawn topmost where it is (not dimmed under a modal's backdrop)."""
    return page.evaluate("""s => { const e = [...document.querySelectorAll(s)].pop(); const r = e.getBoundingClientRect();
        return e.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)); }""", selector)


def test_an_api_error_is_said_inside_the_open_dialog_and_the_form_stays(page, user, local_stack):
    sign_in(page, user)
    create_project(page, "Vanishing")
    project_id = page.evaluate("location.hash").split("/")[-1]
    page.click("#generate-button")
    page.fill("#gen-prompt", "a portrait")
    page.fill("#gen-name", "Orphan")
    # Meanwhile another tab deletes the project.
    resp = local_stack.request("DELETE", f"/api/apps/avatar-creator/projects/{project_id}", token=local_stack.token(user))
    assert resp.status == 204, resp
    page.click("#start-generation")
    error = page.locator("#generate-panel #generate-error")
    expect(error).to_have_text("Project not found")
    assert _on_top(page, "#generate-error")
    expect(page.locator("#gen-name")).to_have_value("Orphan")
    expect(page.locator("#start-generation")).to_be_enabled()


def test_quota_words_say_what_to_do_with_retry_after(page):
    page.goto("/")
    said = page.evaluate("""() => import('./ui.js').then(({ errorText }) => [
        errorText({ status: 429, code: 'quota_exceeded', details: { kind: 'active', limit: 5 }, retryAfter: 5, message: 'x' }),
        errorText({ status: 429, code: 'quota_exceeded', details: { kind: 'daily', limit: 50 }, retryAfter: 7200, message: 'x' }),
        errorText({ status: 503, code: 'service_unavailable', details: {}, retryAfter: 30, message: 'The queue is busy' }),
        errorText({ status: 400, code: 'validation_error', message: 'The request body is invalid',
                    details: [{ field: 'personaAge', message: 'Input should be less than or equal to 120' }] }),
    ])""")
    assert said == [
        "5 generations are running — wait for one to finish or cancel one, then try again (in about 5 s).",
        "You have used today's 50 generations — try again in 2 h.",
        # Issue 28 #11: the page's own sentence by error code, not the API's developer message.
        "The service is busy — try again in 30 s.",
        "Check these fields — Age: Input should be less than or equal to 120",
    ]


def test_quota_429_is_said_inside_the_open_dialog_with_what_to_do(page, user, local_stack):
    sign_in(page, user)
    create_project(page, "Busy")
    _fill_active_quota(local_stack, user)
    page.click("#generate-button")
    page.fill("#gen-prompt", "a portrait")
    page.fill("#gen-name", "Extra")
    page.click("#start-generation")
    error = page.locator("#generate-panel #generate-error")
    expect(error).to_have_text(re.compile(
        r"^5 generations are running — wait for one to finish or cancel one, then try again \(in about \d+ s\)\.$"),
        timeout=5_000)
    assert _on_top(page, "#generate-error")
    expect(page.locator("#gen-name")).to_have_value("Extra")  # the form stays, with what was typed
    _fill_active_quota(local_stack, user, 0)
    page.click("#start-generation")  # once one finishes, the same click works
    expect(page.locator("#generate-error")).to_be_hidden()
    expect(page.locator(".pending-tile, .avatar-card")).not_to_have_count(0)


def test_toasts_show_above_an_open_dialog(page, user):
    sign_in(page, user)
    create_project(page, "Toasts")
    page.click("#rename-project")
    page.evaluate("() => import('./ui.js').then(m => m.toast('Hello above', 'ok'))")
    expect(page.locator(".toast", has_text="Hello above")).to_be_visible()
    assert _on_top(page, ".toast")


def test_signed_out_view_explains_both_ways_in_and_hides_stats_and_sign_out(page):
    page.goto("/")
    expect(page.locator("#dev-signin")).to_be_visible()
    expect(page.locator("#stats-button")).to_be_hidden()
    expect(page.locator("#signout-button")).to_be_hidden()
    expect(page.locator("#dev-help")).to_contain_text("any user id")
    expect(page.locator("#token-help")).to_contain_text("make token USER=alice")
    expect(page.locator("#use-token")).to_be_visible()


def test_a_bad_token_is_said_not_valid_and_does_not_sign_in(page, local_stack):
    page.goto("/")
    good = local_stack.token("someone")
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    page.fill("#paste-token", tampered)
    page.click("#use-token")
    expect(page.locator("#token-error")).to_contain_text("This token is not valid")
    expect(page.locator("#stats-button")).to_be_hidden()
    page.fill("#paste-token", "hello")
    page.click("#use-token")
    expect(page.locator("#token-error")).to_contain_text("This token is not valid")
    page.fill("#paste-token", good)
    page.click("#use-token")
    expect(page.locator("#create-project")).to_be_visible()
    expect(page.locator("#who")).to_have_text("someone")


def test_an_expired_session_signs_out_with_a_message_and_no_uncaught_error(page, user, local_stack):
    sign_in(page, user)
    # The stored token expires under the page.
    expired = local_stack.token(user, now=1_700_000_000, ttl_seconds=60)
    page.evaluate("t => localStorage.setItem('avatar-creator.token', t)", expired)
    page.reload()
    expect(page.locator(".toast.error")).to_contain_text("sign in again")
    expect(page.locator("#dev-signin")).to_be_visible()
    expect(page.locator("#stats-button")).to_be_hidden()


def test_sign_out_returns_to_the_signed_out_view(page, user):
    sign_in(page, user)
    expect(page.locator("#stats-button")).to_be_visible()
    page.click("#signout-button")
    expect(page.locator("#dev-signin")).to_be_visible()
    expect(page.locator("#stats-button")).to_be_hidden()
    expect(page.locator("#signout-button")).to_be_hidden()
    page.reload()
    expect(page.locator("#dev-signin")).to_be_visible()  # the token is gone, not just hidden
