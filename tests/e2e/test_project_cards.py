"""Issue 28: project cards show a mosaic of their newest faces (at most 4, asked for only when the
card is on screen) instead of a monogram; a project without avatars keeps a clean monogram."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import sign_in

API = "/api/apps/avatar-creator"


def test_project_cards_show_their_four_newest_faces_and_an_empty_project_its_monogram(page, user, local_stack):
    token = local_stack.token(user)
    faces = local_stack.request("POST", f"{API}/projects", {"name": "Faces of Bali"}, token=token).json()["id"]
    empty = local_stack.request("POST", f"{API}/projects", {"name": "Empty studio"}, token=token).json()["id"]
    for body in ({"prompt": "calm engineer at a standing desk", "name": "Arif", "numImages": 4},
                 {"prompt": "smiling batik designer in a bright studio", "name": "Dewi"}):
        assert local_stack.request("POST", f"{API}/projects/{faces}/avatars/generate", body, token=token).status == 202
    asked: list[str] = []
    page.on("request", lambda r: re.search(r"/projects/[\w-]+/avatars\?", r.url) and asked.append(r.url))
    sign_in(page, user)
    # Wait for the five avatars on the project's own page, then come back to the list.
    page.goto(f"/#/projects/{faces}")
    expect(page.locator('#avatar-grid .avatar-card[data-status="ready"]')).to_have_count(5, timeout=60_000)
    newest = local_stack.request("GET", f"{API}/projects/{faces}/avatars?limit=10", token=token).json()["items"]
    asked.clear()
    page.goto("/#/")
    card = page.locator(f'.project-card[data-project-id="{faces}"]')
    mosaic = card.locator(".mosaic img")
    expect(mosaic).to_have_count(4)
    page.wait_for_function("() => [...document.querySelectorAll('.mosaic img')].every(i => i.complete && i.naturalWidth > 0)")
    shown = [mosaic.nth(i).get_attribute("data-avatar-id") for i in range(4)]
    assert shown == [a["id"] for a in newest if a["status"] == "ready"][:4]
    box = card.locator(".mosaic").bounding_box()
    assert box["width"] >= 90 and box["height"] >= 90, box
    # The empty project: its monogram, no images, and no call for its avatars.
    other = page.locator(f'.project-card[data-project-id="{empty}"]')
    expect(other.locator(".mosaic.monogram")).to_have_text("ES")
    expect(other.locator("img")).to_have_count(0)
    assert not any(f"/projects/{empty}/avatars" in url for url in asked), asked
    # One small list call for the card with faces (bounded: a page of 8 at most).
    mine = [url for url in asked if f"/projects/{faces}/avatars" in url]
    assert len(mine) == 1 and "limit=8" in mine[0], mine
