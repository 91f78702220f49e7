"""The read routes test_call_counts.py does not cover make a fixed number of DynamoDB calls too, at 10
and at 5,000 items (an avatar, a generation, a project's generations, filtered and searched avatar
lists, second pages) — and every GET route of the app is claimed by one of these tests."""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from chalicelib import clock, dependencies, ids
from chalicelib.aws.models import (
    META,
    GenerationModel,
    generation_pk,
    project_active_pk,
    project_items_pk,
)
from tests.functional import test_call_counts as base
from tests.functional.conftest import PREFIX, auth
from tests.support.ddb_calls import DynamoDBCalls

USER = base.USER

# Same answer at both sizes: the claim.
EXPECTED = {
    "GET /avatars/{id}": ["GetItem", "Query"],  # the avatar, its derivatives (lineage, GSI2)
    "GET /generations/{id}": ["GetItem"],
    "GET /projects/{id}/generations": ["GetItem", "Query"],
    "GET /projects/{id}/generations?status=active": ["GetItem", "Query"],
    "GET /projects/{id}/generations?cursor": ["GetItem", "Query"],
    "GET /projects?cursor": ["Query"],
    "GET /projects/{id}/avatars?cursor": ["GetItem", "Query"],
    "GET /projects?limit=100": ["Query"],
}
# Filters that can leave pages empty stop after 3 Queries (then a cursor), whatever the data.
BOUNDED = {
    "GET /projects/{id}/avatars?status=ready": 4,
    "GET /projects/{id}/avatars?q=": 4,
}
# Routes whose calls are counted elsewhere (test_call_counts.py, test_presets.py, test_events.py, test_shares.py).
ELSEWHERE = {"GET /stats", "GET /avatars/{id}/usage-history", "GET /projects", "GET /projects/{id}",
             "GET /projects/{id}/avatars", "GET /presets", "GET /presets/{id}", "GET /persona-examples",
             "GET /webhooks", "GET /webhooks/{id}", "GET /webhooks/{id}/deliveries",
             "GET /avatars/{id}/shares", "GET /s/{token}",  # test_shares.py
             "GET /exports/{id}",  # test_exports.py
             "GET /avatars/{id}/versions",  # test_versions.py
             "GET /projects/{id}/members", "GET /me"}  # test_teams.py (team reads, whatever the numbers)
NOT_DATA = {"GET /health", "GET /openapi.json"}  # no DynamoDB at all


def seed_generations(project_id: str, n: int) -> str:
    """n generations in the project, every other one still pending (in the ACTIVE index)."""
    iso = clock.iso(clock.now())
    first = None
    with GenerationModel.batch_write() as batch:
        for i in range(n):
            gid = ids.new_id("gen")
            first = first or gid
            active = i % 2 == 0
            batch.save(GenerationModel(
                generation_pk(USER, gid), META, gsi1pk=project_items_pk(USER, project_id), gsi1sk=f"G#{gid}",
                gsi2pk=project_active_pk(USER, project_id) if active else None, gsi2sk=f"G#{gid}" if active else None,
                id=gid, user_id=USER, project_id=project_id, status="pending" if active else "failed",
                stage="queued", progress=0, attempts=0, request={"prompt": "p", "sourceType": "text_to_image"},
                prompt="p", created_at=iso, updated_at=iso))
    return first


def get(client, url: str) -> tuple[dict, list[str]]:
    with DynamoDBCalls() as calls:
        resp = client.http.get(url, headers=auth(USER))
    assert resp.status_code == 200, (url, resp.status_code, resp.body)
    return resp.json_body, calls.names


@pytest.mark.timeout(900)  # 5,000 items into moto: ~10 s alone, minutes on a loaded 2-core machine
@pytest.mark.parametrize("n", [10, 5000])
def test_more_reads_make_the_same_dynamodb_calls_for_10_and_5000_items(client, n):
    started = time.monotonic()
    seeded = base.seed(dependencies.get_deps().dynamodb, n)
    pid, aid = seeded["project"], seeded["avatar"]
    gid = seed_generations(pid, n)
    print(f"\nn={n}: seeded in {time.monotonic() - started:.1f}s")

    projects_page, _ = get(client, f"{PREFIX}/projects?limit=5")
    avatars_page, _ = get(client, f"{PREFIX}/projects/{pid}/avatars?limit=5")
    generations_page, _ = get(client, f"{PREFIX}/projects/{pid}/generations?limit=5")
    urls = {
        "GET /avatars/{id}": f"{PREFIX}/avatars/{aid}",
        "GET /generations/{id}": f"{PREFIX}/generations/{gid}",
        "GET /projects/{id}/generations": f"{PREFIX}/projects/{pid}/generations",
        "GET /projects/{id}/generations?status=active": f"{PREFIX}/projects/{pid}/generations?status=active",
        "GET /projects/{id}/generations?cursor":
            f"{PREFIX}/projects/{pid}/generations?limit=5&cursor={quote(generations_page['nextCursor'])}",
        "GET /projects?cursor": f"{PREFIX}/projects?limit=5&cursor={quote(projects_page['nextCursor'])}",
        "GET /projects/{id}/avatars?cursor":
            f"{PREFIX}/projects/{pid}/avatars?limit=5&cursor={quote(avatars_page['nextCursor'])}",
        "GET /projects?limit=100": f"{PREFIX}/projects?limit=100",
        "GET /projects/{id}/avatars?status=ready": f"{PREFIX}/projects/{pid}/avatars?status=ready",
        "GET /projects/{id}/avatars?q=": f"{PREFIX}/projects/{pid}/avatars?q=nomatch",
    }
    seen, bodies = {}, {}
    for name, url in urls.items():
        bodies[name], seen[name] = get(client, url)

    print(f"calls: {seen}")
    assert {k: seen[k] for k in EXPECTED} == EXPECTED
    for name, most in BOUNDED.items():
        assert 2 <= len(seen[name]) <= most and seen[name][0] == "GetItem" and set(seen[name][1:]) == {"Query"}, \
            (name, seen[name])
    # The data really is that big, and the pages are full.
    assert len(bodies["GET /projects?limit=100"]["items"]) == min(100, n)
    assert len(bodies["GET /projects/{id}/generations"]["items"]) == min(20, n)
    assert {g["status"] for g in bodies["GET /projects/{id}/generations?status=active"]["items"]} == {"pending"}
    assert bodies["GET /projects/{id}/avatars?q="]["items"] == []


def test_every_get_route_has_its_calls_counted():
    from app import app

    counted = {name.split("?")[0] for name in [*EXPECTED, *BOUNDED, *base.EXPECTED]} | ELSEWHERE | NOT_DATA
    routes = set()
    for path, methods in app.routes.items():
        if "GET" in methods:
            template = path.removeprefix(PREFIX)
            for param in ("project_id", "avatar_id", "generation_id", "preset_id", "example_id", "webhook_id",
                          "export_id"):
                template = template.replace("{" + param + "}", "{id}")
            routes.add(f"GET {template}")
    assert routes - counted == set(), "a GET route without a DynamoDB call count"
