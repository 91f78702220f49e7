"""The Webhooks page against the local stack: add (the secret shown once, copyable), a test event that
reaches a receiver on 127.0.0.1 (checked with `standardwebhooks`) and shows as delivered, rotate,
delete, API errors inside the open dialog, the keyboard, accessibility and the phone layout."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import DESKTOP, PHONE, sign_in
from tests.e2e.test_views import check, close_dialog, no_sideways_scroll
from tests.support.webhooks import Receiver

SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")  # 32 random bytes, base64
ALL_TYPES = ["avatar.deleted", "avatar.ready", "avatar.rejected", "avatar.share_revoked", "avatar.shared",
             "avatar.updated", "generation.cancelled", "generation.completed", "generation.failed", "project.deleted",
             "project.member_added", "project.member_removed"]


def open_webhooks(page) -> None:
    page.click("#webhooks-link")
    expect(page.locator("h1")).to_have_text("Webhooks")
    expect(page.locator("#webhooks-link")).to_have_attribute("aria-current", "page")


def add_webhook(page, url: str, description: str = "") -> str:
    """Add one through the dialog; returns the secret it shows (the dialog stays on the secret)."""
    page.click("#add-webhook")
    expect(page.locator("#webhook-url")).to_be_focused()
    page.fill("#webhook-url", url)
    if description:
        page.fill("#webhook-description", description)
    page.click("#save-webhook")
    expect(page.locator("#secret-panel")).to_be_visible()
    return page.locator("#webhook-secret").inner_text()


def card(page, text: str):
    return page.locator(".webhook-card", has_text=text)


def api_webhooks(local_stack, user: str) -> list[dict]:
    resp = local_stack.request("GET", "/api/apps/avatar-creator/webhooks?limit=100", token=local_stack.token(user))
    assert resp.status == 200, resp
    return resp.json()["items"]


def test_signed_out_people_do_not_see_webhooks(page):
    page.goto("/#/webhooks")
    expect(page.locator("#dev-signin")).to_be_visible()
    expect(page.locator("#webhooks-link")).to_be_hidden()
    expect(page.locator("#webhook-list")).to_have_count(0)


def test_adding_a_webhook_shows_its_secret_once_beside_a_copy_button(new_page, user, local_stack):
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=local_stack.outputs["ApiUrl"])
    sign_in(page, user)
    open_webhooks(page)
    expect(page.locator("#no-webhooks")).to_be_visible()
    expect(page.locator("#webhook-count")).to_have_text("0 of 10 webhooks")
    # Every event type is offered and checked unless the person chooses otherwise.
    page.click("#add-webhook")
    boxes = page.locator("#webhook-form input[type=checkbox]")
    expect(boxes).to_have_count(len(ALL_TYPES))
    assert all(boxes.nth(i).is_checked() for i in range(len(ALL_TYPES)))
    close_dialog(page)

    secret = add_webhook(page, "http://127.0.0.1:9/orders-hook", "Orders backend")
    assert SECRET.match(secret), secret
    expect(page.locator("#dialog-title")).to_have_text("Webhook added — your signing secret")
    expect(page.locator("#secret-warning")).to_contain_text("you won't see it again")
    expect(page.locator("#copy-secret")).to_be_focused()
    page.click("#copy-secret")
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    [stored] = api_webhooks(local_stack, user)
    assert stored["url"] == "http://127.0.0.1:9/orders-hook" and stored["description"] == "Orders backend"
    assert sorted(stored["events"]) == ALL_TYPES and "secret" not in stored

    page.click("#secret-done")
    expect(page.locator("dialog[open]")).to_have_count(0)
    hook = card(page, "Orders backend")
    expect(hook).to_have_count(1)
    expect(hook.locator(".webhook-events")).to_have_text("All events")
    expect(hook.locator(".last-delivery")).to_have_text("No deliveries yet")
    expect(page.locator("#webhook-count")).to_have_text("1 of 10 webhooks")
    # Once closed, the secret is nowhere on the page, nor after a reload.
    assert secret not in page.content()
    page.reload()
    expect(card(page, "Orders backend")).to_have_count(1)
    assert secret not in page.content()


def test_a_chosen_subset_of_events_is_what_the_webhook_subscribes_to(page, user, local_stack):
    sign_in(page, user)
    open_webhooks(page)
    page.click("#add-webhook")
    page.fill("#webhook-url", "http://127.0.0.1:9/only-ready")
    page.get_by_role("button", name="None").click()
    page.click("#save-webhook")
    expect(page.locator("#dialog-error")).to_have_text("Choose at least one event to send.")
    page.check("#event-avatar-ready")
    page.check("#event-generation-completed")
    page.click("#save-webhook")
    expect(page.locator("#secret-panel")).to_be_visible()
    [stored] = api_webhooks(local_stack, user)
    assert stored["events"] == ["avatar.ready", "generation.completed"]
    page.click("#secret-done")
    expect(card(page, "only-ready").locator(".webhook-events")).to_have_text("avatar.ready, generation.completed")


def test_editing_changes_the_url_description_and_events_without_showing_the_secret(page, user, local_stack):
    sign_in(page, user)
    open_webhooks(page)
    secret = add_webhook(page, "http://127.0.0.1:9/before", "Before")
    page.click("#secret-done")
    card(page, "Before").get_by_role("button", name="Edit — Before").click()
    expect(page.locator("#webhook-url")).to_have_value("http://127.0.0.1:9/before")
    page.fill("#webhook-url", "http://127.0.0.1:9/after")
    page.fill("#webhook-description", "After")
    page.get_by_role("button", name="None").click()
    page.check("#event-project-deleted")
    page.click("#save-webhook")
    expect(page.locator("dialog[open]")).to_have_count(0)
    hook = card(page, "After")
    expect(hook.locator(".webhook-url")).to_have_text("http://127.0.0.1:9/after")
    expect(hook.locator(".webhook-events")).to_have_text("project.deleted")
    [stored] = api_webhooks(local_stack, user)
    assert (stored["url"], stored["description"], stored["events"]) == ("http://127.0.0.1:9/after", "After", ["project.deleted"])
    assert secret not in page.content()


def test_a_test_event_reaches_the_receiver_and_shows_as_delivered(page, user):
    sign_in(page, user)
    open_webhooks(page)
    with Receiver() as receiver:
        secret = add_webhook(page, receiver.url, "Local receiver")
        receiver.secrets = [secret]
        page.click("#secret-done")
        hook = card(page, "Local receiver")
        hook.get_by_role("button", name="Send test — Local receiver").click()
        expect(page.locator(".toast.ok")).to_contain_text("Test event sent")
        [got] = receiver.wait_for(1, timeout=20)
        assert got["event"]["type"] == "webhook.test"
        assert got["verified"] == [secret]  # signed with the secret the page showed
        # The card follows by itself: its last delivery is this event, delivered.
        expect(hook.locator(".last-delivery")).to_have_attribute("data-status", "delivered", timeout=20_000)
        expect(hook.locator(".last-delivery")).to_contain_text("webhook.test · HTTP 200")
        expect(hook.locator(".badge")).to_have_text("Delivered")

    hook.get_by_role("button", name="Deliveries — Local receiver").click()
    expect(page.locator("#dialog-title")).to_have_text("Recent deliveries")
    row = page.locator("#deliveries tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-event-id", got["id"])
    cells = row.locator("td")
    expect(cells.nth(1)).to_contain_text("webhook.test")
    expect(cells.nth(1)).to_contain_text(got["id"])
    expect(cells.nth(2)).to_have_text("1")
    expect(cells.nth(3)).to_have_text("Delivered HTTP 200")
    expect(cells.nth(4)).to_have_text(re.compile(r"^\d+ ms$"))
    expect(cells.nth(0).locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))


def test_a_refused_delivery_shows_retrying_with_its_status_then_delivered_on_the_retry(page, user):
    sign_in(page, user)
    open_webhooks(page)
    with Receiver() as receiver:
        receiver.script = [500]  # the first attempt is answered 500; the retry (5 s later) 200
        add_webhook(page, receiver.url, "Flaky")
        page.click("#secret-done")
        hook = card(page, "Flaky")
        hook.get_by_role("button", name="Send test — Flaky").click()
        last = hook.locator(".last-delivery")
        expect(last).to_have_attribute("data-status", "retrying", timeout=20_000)
        expect(last).to_contain_text("webhook.test · HTTP 500")
        expect(hook.locator(".badge")).to_have_text("Retrying")
        expect(last).to_have_attribute("data-status", "delivered", timeout=30_000)
        expect(last).to_contain_text("HTTP 200")
        expect(last).to_contain_text("attempt 2")
        got = receiver.wait_for(2, timeout=5)
        assert len(got) == 2 and got[0]["id"] == got[1]["id"]
    hook.get_by_role("button", name="Deliveries — Flaky").click()
    rows = page.locator("#deliveries tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").nth(3)).to_have_text("Delivered HTTP 200")
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("2")
    expect(rows.nth(1).locator("td").nth(3)).to_have_text("Retrying HTTP 500")
    expect(rows.nth(1).locator("td").nth(2)).to_have_text("1")


def test_rotating_the_secret_shows_the_new_one_once_and_both_sign_for_a_while(page, user):
    sign_in(page, user)
    open_webhooks(page)
    with Receiver() as receiver:
        old = add_webhook(page, receiver.url, "Rotating")
        page.click("#secret-done")
        hook = card(page, "Rotating")
        hook.get_by_role("button", name="Rotate secret — Rotating").click()
        expect(page.locator("#dialog-title")).to_have_text("Rotate the signing secret?")
        expect(page.locator("#rotate-confirm")).to_be_focused()
        page.click("#rotate-confirm")
        expect(page.locator("#dialog-title")).to_have_text("Your new signing secret")
        new = page.locator("#webhook-secret").inner_text()
        assert SECRET.match(new) and new != old
        expect(page.locator("#secret-warning")).to_contain_text("you won't see it again")
        page.click("#secret-done")
        expect(hook.get_by_role("button", name="Rotate secret — Rotating")).to_be_focused()
        expect(hook).to_contain_text("secret rotated just now")
        assert new not in page.content()
        receiver.secrets = [old, new]
        hook.get_by_role("button", name="Send test — Rotating").click()
        [got] = receiver.wait_for(1, timeout=20)
        assert sorted(got["verified"]) == sorted([old, new])  # the new secret the page showed really signs


def test_deleting_a_webhook_asks_first_and_removes_it(page, user, local_stack):
    sign_in(page, user)
    open_webhooks(page)
    add_webhook(page, "http://127.0.0.1:9/keep", "Keep me")
    page.click("#secret-done")
    add_webhook(page, "http://127.0.0.1:9/gone", "Remove me")
    page.click("#secret-done")
    expect(page.locator(".webhook-card")).to_have_count(2)
    card(page, "Remove me").get_by_role("button", name="Delete — Remove me").click()
    expect(page.locator("#dialog-title")).to_have_text("Delete this webhook?")
    expect(page.locator("dialog")).to_contain_text("http://127.0.0.1:9/gone")
    expect(page.locator("#confirm-no")).to_be_focused()  # issue 28 #12: the safe choice first
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".webhook-card")).to_have_count(2)
    card(page, "Remove me").get_by_role("button", name="Delete — Remove me").click()
    page.locator("dialog button.danger").click()
    expect(page.locator(".toast.ok")).to_contain_text("Webhook deleted")
    expect(card(page, "Remove me")).to_have_count(0)
    expect(page.locator("#webhook-count")).to_have_text("1 of 10 webhooks")
    assert [w["description"] for w in api_webhooks(local_stack, user)] == ["Keep me"]


def test_a_refused_url_is_said_inside_the_dialog_and_the_form_stays(page, user, local_stack):
    sign_in(page, user)
    open_webhooks(page)
    page.click("#add-webhook")
    page.fill("#webhook-url", "http://169.254.169.254/latest/meta-data")
    page.fill("#webhook-description", "Sneaky")
    page.click("#save-webhook")
    error = page.locator("dialog #dialog-error")
    expect(error).to_have_text("The webhook URL resolves to a cloud metadata address; only public addresses can receive webhooks")
    expect(page.locator("#webhook-url")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#webhook-url")).to_be_focused()
    expect(page.locator("#webhook-description")).to_have_value("Sneaky")
    expect(page.locator("#save-webhook")).to_be_enabled()
    page.fill("#webhook-url", "ftp://example.com/hook")
    page.click("#save-webhook")
    expect(error).to_have_text("The webhook URL must start with https://")
    assert api_webhooks(local_stack, user) == []
    # Fixed, the same dialog adds it.
    page.fill("#webhook-url", "http://127.0.0.1:9/fixed")
    page.click("#save-webhook")
    expect(page.locator("#secret-panel")).to_be_visible()
    expect(error).to_be_hidden()


def test_the_ten_webhook_limit_is_said_inside_the_dialog(page, user, local_stack):
    token = local_stack.token(user)
    for i in range(10):
        resp = local_stack.request("POST", "/api/apps/avatar-creator/webhooks",
                                   {"url": f"http://127.0.0.1:9/h{i}"}, token=token)
        assert resp.status == 201, resp
    sign_in(page, user)
    open_webhooks(page)
    expect(page.locator(".webhook-card")).to_have_count(10)
    expect(page.locator("#webhook-count")).to_have_text("10 of 10 webhooks")
    page.click("#add-webhook")
    page.fill("#webhook-url", "http://127.0.0.1:9/eleventh")
    page.click("#save-webhook")
    # Issue 28 #11: said by its code from the page's catalogue (the sentence ends with a full stop there).
    expect(page.locator("dialog #dialog-error")).to_have_text("You already have 10 webhooks; delete one first.")
    expect(page.locator(".webhook-card")).to_have_count(10)


def test_disabling_shows_the_state_and_reason_and_enabling_turns_it_back_on(page, user):
    sign_in(page, user)
    open_webhooks(page)
    add_webhook(page, "http://127.0.0.1:9/toggle", "Toggle")
    page.click("#secret-done")
    hook = card(page, "Toggle")
    hook.get_by_role("button", name="Disable — Toggle").click()
    expect(hook).to_have_attribute("data-enabled", "false")
    expect(hook.locator(".badge")).to_have_text("Disabled")
    expect(hook.locator(".disabled-reason")).to_contain_text("Disabled by you")
    expect(hook.get_by_role("button", name="Send test — Toggle")).to_have_count(0)
    expect(hook.get_by_role("button", name="Enable — Toggle")).to_be_focused()
    page.keyboard.press("Enter")
    expect(hook).to_have_attribute("data-enabled", "true")
    expect(hook.locator(".disabled-reason")).to_have_count(0)


def test_webhooks_work_by_keyboard_alone(page, user):
    sign_in(page, user)
    with Receiver() as receiver:
        page.focus("#webhooks-link")
        page.keyboard.press("Enter")
        expect(page.locator("#add-webhook")).to_be_visible()
        page.focus("#add-webhook")
        page.keyboard.press("Enter")
        expect(page.locator("#webhook-url")).to_be_focused()
        page.keyboard.type(receiver.url)
        page.keyboard.press("Tab")
        page.keyboard.type("Keys")
        page.keyboard.press("Enter")  # submits the form
        expect(page.locator("#copy-secret")).to_be_focused()
        receiver.secrets = [page.locator("#webhook-secret").inner_text()]
        page.keyboard.press("Tab")
        expect(page.locator("#secret-done")).to_be_focused()
        page.keyboard.press("Enter")
        hook = card(page, "Keys")
        hook.get_by_role("button", name="Send test — Keys").focus()
        page.keyboard.press("Enter")
        [got] = receiver.wait_for(1, timeout=20)
        assert got["verified"] == receiver.secrets
    expect(hook.locator(".last-delivery")).to_have_attribute("data-status", "delivered", timeout=20_000)
    page.keyboard.press("Tab")
    expect(hook.get_by_role("button", name="Deliveries — Keys")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#deliveries tbody tr")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)


@pytest.mark.parametrize("suffix, viewport, scheme", [("desktop", DESKTOP, "light"), ("phone", PHONE, "light"),
                                                      ("desktop-dark", DESKTOP, "dark")])
def test_the_webhooks_page_and_dialogs_are_accessible_fit_and_are_screenshotted(new_page, user, suffix, viewport, scheme):
    page = new_page(viewport, color_scheme=scheme)
    sign_in(page, user)
    no_sideways_scroll(page, "top bar with Webhooks")
    open_webhooks(page)
    expect(page.locator("#no-webhooks")).to_be_visible()
    check(page, "webhooks-empty", suffix)
    page.click("#add-webhook")
    check(page, "webhook-add", suffix)
    # A refused URL, said in the dialog.
    page.fill("#webhook-url", "http://169.254.169.254/")
    page.click("#save-webhook")
    expect(page.locator("#dialog-error")).to_be_visible()
    check(page, "webhook-add-error", suffix)
    close_dialog(page)
    with Receiver() as receiver:
        # One unbroken 200-character path: it wraps, never widens the page.
        long_url = f"{receiver.url}/{'x' * 200}" if suffix == "phone" else receiver.url
        add_webhook(page, long_url, "Pose Generator backend")
        check(page, "webhook-secret", suffix)
        page.click("#secret-done")
        hook = card(page, "Pose Generator backend")
        hook.get_by_role("button", name="Send test — Pose Generator backend").click()
        receiver.wait_for(1, timeout=20)
        expect(hook.locator(".last-delivery")).to_have_attribute("data-status", "delivered", timeout=20_000)
    add_webhook(page, "http://127.0.0.1:9/video", "Video Generator backend")
    page.click("#secret-done")
    card(page, "Video Generator backend").get_by_role("button", name="Disable — Video Generator backend").click()
    expect(card(page, "Video Generator backend").locator(".disabled-reason")).to_be_visible()
    page.evaluate("document.activeElement.blur()")
    check(page, "webhooks", suffix)
    hook.get_by_role("button", name="Deliveries — Pose Generator backend").click()
    expect(page.locator("#deliveries tbody tr")).to_have_count(1)
    check(page, "webhook-deliveries", suffix)
    close_dialog(page)
    hook.get_by_role("button", name="Rotate secret — Pose Generator backend").click()
    check(page, "webhook-rotate", suffix)
    close_dialog(page)
    hook.get_by_role("button", name="Delete — Pose Generator backend").click()
    check(page, "webhook-delete", suffix)
    close_dialog(page)
    assert_accessible(page, f"webhooks after the dialogs ({suffix})")


def test_the_deliveries_dialog_follows_new_attempts_while_open(page, user, local_stack):
    """Issue 28 #14: a delivery made while the dialog is open appears without Refresh."""
    sign_in(page, user)
    open_webhooks(page)
    with Receiver() as receiver:
        add_webhook(page, receiver.url, "Watched")
        page.click("#secret-done")
        hook = card(page, "Watched")
        hook.get_by_role("button", name="Deliveries — Watched").click()
        expect(page.locator("#no-deliveries")).to_be_visible()
        webhook_id = api_webhooks(local_stack, user)[0]["id"]
        resp = local_stack.request("POST", f"/api/apps/avatar-creator/webhooks/{webhook_id}/test", {},
                                   token=local_stack.token(user))
        assert resp.status in (200, 202), resp
        receiver.wait_for(1, timeout=20)
        row = page.locator("#deliveries tbody tr")
        expect(row).to_have_count(1, timeout=20_000)
        expect(row.locator("td").nth(3)).to_have_text("Delivered HTTP 200")
        expect(page.locator("#refresh-deliveries")).to_be_focused()  # the re-reads leave focus alone
