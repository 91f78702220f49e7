"""The compare view (issue 29) on the local stack, in Chromium: pick 2–4 avatars of a project (a fifth
cannot be picked), open them side by side, and read their use per day — the chart's bars and the
table carry the numbers the apps reported, on the day each use happened (UTC)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import PHONE, create_project, sign_in, uploaded_avatar
from tests.support.browser import screenshot

API = "/api/apps/avatar-creator"


def ready_ids(page) -> dict[str, str]:
    cards = page.locator('#avatar-grid .avatar-card[data-status="ready"]')
    return {c.locator("h3 .ellipsis").inner_text(): c.get_attribute("data-avatar-id") for c in cards.all()}


def report(local_stack, user, avatar_id, app, when: datetime, n: int = 1) -> None:
    for i in range(n):
        resp = local_stack.request("POST", f"{API}/avatars/{avatar_id}/usage", {
            "eventId": f"e2e-{app}-{avatar_id}-{when:%Y%m%d}-{i}", "appId": app, "appName": app.replace("-", " ").title(),
            "action": "use", "occurredAt": when.strftime("%Y-%m-%dT%H:%M:%S.000Z")}, token=local_stack.token(user))
        assert resp.status == 201, resp


def bars(page, avatar_id) -> dict[str, int]:
    return page.evaluate("""id => Object.fromEntries([...document.querySelectorAll(
        `.compare-col[data-avatar-id="${id}"] .chart-bar`)].map(b => [b.dataset.day, Number(b.dataset.count)]))""", avatar_id)


def test_pick_two_to_four_then_compare_their_use_per_day(new_page, user, local_stack, tmp_path):
    page = new_page()
    sign_in(page, user)
    create_project(page, "Compare me")
    uploaded_avatar(page, tmp_path, "Rina")
    project_id = page.evaluate("location.hash").split("/")[-1]
    resp = local_stack.request("POST", f"{API}/projects/{project_id}/avatars/generate",
                               {"prompt": "a batik designer", "name": "Dewi", "numImages": 4}, token=local_stack.token(user))
    assert resp.status == 202, resp
    expect(page.locator('#avatar-grid .avatar-card[data-status="ready"]')).to_have_count(5, timeout=60_000)
    ids = ready_ids(page)
    now = datetime.now(timezone.utc)
    day = lambda back: (now - timedelta(days=back)).strftime("%Y-%m-%d")  # noqa: E731
    report(local_stack, user, ids["Rina"], "pose-generator", now, n=2)
    report(local_stack, user, ids["Rina"], "video-generator", now - timedelta(days=3))
    report(local_stack, user, ids["Dewi (1)"], "pose-generator", now - timedelta(days=1))
    report(local_stack, user, ids["Dewi (2)"], "poster-maker", now - timedelta(days=40))  # outside 30 days, inside 90

    # Selection: the button opens only with 2-4 picks; at 4 the fifth box is disabled.
    page.click("#compare-mode")
    expect(page.locator("#compare-mode")).to_have_attribute("aria-pressed", "true")
    boxes = page.locator("#avatar-grid .compare-pick input")
    expect(boxes).to_have_count(5)
    box = lambda name: page.get_by_role("checkbox", name=f"Compare {name}")  # noqa: E731
    expect(page.locator("#compare-open")).to_be_disabled()
    box("Rina").check()
    expect(page.locator("#compare-open")).to_be_disabled()
    expect(page.locator("#compare-status")).to_contain_text("1 selected")
    for name in ("Dewi (1)", "Dewi (2)", "Dewi (3)"):
        box(name).check()
    expect(page.locator("#compare-status")).to_contain_text("4 selected")
    expect(box("Dewi (4)")).to_be_disabled()
    expect(page.locator("#compare-open")).to_be_enabled()
    box("Dewi (3)").uncheck()
    expect(box("Dewi (4)")).to_be_enabled()
    box("Dewi (4)").check()
    expect(box("Dewi (3)")).to_be_disabled()
    screenshot(page, "compare-picking", full_page=False)
    assert_accessible(page, "project, picking avatars to compare")
    page.click("#compare-open")

    expect(page).to_have_url(re.compile(rf"#/projects/{project_id}/compare\?avatars="))
    expect(page.locator(".compare-col")).to_have_count(4)
    expect(page.locator(".compare-col h2")).to_have_text(["Rina", "Dewi (1)", "Dewi (2)", "Dewi (4)"])
    expect(page.locator("#compare-project")).to_have_text("Compare me")
    rina = bars(page, ids["Rina"])
    assert len(rina) == 30 and min(rina) == day(29) and max(rina) == day(0)
    assert {d: n for d, n in rina.items() if n} == {day(0): 2, day(3): 1}
    assert {d: n for d, n in bars(page, ids["Dewi (1)"]).items() if n} == {day(1): 1}
    assert not any(bars(page, ids["Dewi (2)"]).values())  # its use was 40 days ago
    expect(page.locator(f'.compare-col[data-avatar-id="{ids["Rina"]}"] .compare-total')).to_have_attribute("data-total", "3")
    expect(page.locator(f'.compare-col[data-avatar-id="{ids["Rina"]}"] .compare-apps li')).to_have_count(2)
    expect(page.locator(f'.compare-col[data-avatar-id="{ids["Rina"]}"] svg')).to_have_attribute(
        "aria-label", re.compile(r"Rina: 3 uses in the last 30 days"))
    # The same numbers in the table (the accessible reading of the charts).
    page.click("#compare-numbers summary")
    row = page.locator(f'#compare-table tbody tr[data-day="{day(0)}"] td')
    expect(row).to_have_text(["2", "0", "0", "0"])
    expect(page.locator("#compare-table tfoot td")).to_have_text(["3", "1", "0", "0"])
    # Each picture loads (the display copy's presigned URL).
    page.wait_for_function("() => [...document.querySelectorAll('.compare-picture')].every(i => i.complete && i.naturalWidth > 0)")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "compare-four-avatars")

    # The window: 90 days takes in the use of 40 days ago; the address keeps the choice.
    page.select_option("#compare-days", "90")
    expect(page.locator(f'.compare-col[data-avatar-id="{ids["Dewi (2)"]}"] .chart-bar')).to_have_count(90)
    assert {d: n for d, n in bars(page, ids["Dewi (2)"]).items() if n} == {day(40): 1}
    expect(page).to_have_url(re.compile(r"days=90"))
    page.reload()
    expect(page.locator("#compare-days")).to_have_value("90")
    expect(page.locator(".compare-col")).to_have_count(4)
    assert_accessible(page, "compare view")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # An address naming five avatars, or one, is refused with the API's reason, and offers the way back.
    five = ",".join(ids.values())
    page.goto(f"/#/projects/{project_id}/compare?avatars={five}")
    expect(page.locator("#compare-error")).to_contain_text("Pick 2 to 4 different avatars of this project")
    page.goto(f"/#/projects/{project_id}/compare?avatars={ids['Rina']}")
    expect(page.locator("#compare-error")).to_be_visible()
    page.locator("#compare-error a").click()
    expect(page.locator("#project-title")).to_have_text("Compare me")
    expect(page.locator("#compare-bar")).to_be_hidden()


def test_another_users_avatars_are_not_found(new_page, user, local_stack, tmp_path):
    page = new_page()
    sign_in(page, user)
    create_project(page, "Mine")
    uploaded_avatar(page, tmp_path, "Sari")
    mine = list(ready_ids(page).values())[0]
    project_id = page.evaluate("location.hash").split("/")[-1]
    other = local_stack.request("POST", f"{API}/projects", {"name": "Theirs"}, token=local_stack.token(user + "-b")).json()
    unknown = mine[:-1] + ("B" if mine[-1] != "B" else "C")  # a well-formed id nobody has
    page.goto(f"/#/projects/{other['id']}/compare?avatars={mine},{unknown}")
    expect(page.locator("#compare-error h2")).to_have_text("Avatar or project not found")
    page.goto(f"/#/projects/{project_id}/compare?avatars={mine},{unknown}")
    expect(page.locator("#compare-error h2")).to_have_text("Avatar or project not found")
