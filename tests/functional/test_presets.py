"""Preset gallery and persona examples: seeding from the data files, the read API, counters."""
from __future__ import annotations

import copy
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from PIL import Image

from chalicelib import clock

from chalicelib.presets import service as presets
from chalicelib.dependencies import get_deps
from tests.functional.conftest import PREFIX, auth
from tests.support import images as img
from tests.support.ddb_calls import DynamoDBCalls

ROOT = Path(__file__).resolve().parents[2]
PRESETS = json.loads((ROOT / "data/presets.v1.json").read_text())
PERSONAS = json.loads((ROOT / "data/persona-examples.v1.json").read_text())


def render(entry: dict) -> bytes:
    return img.jpeg(512, 640)


@pytest.fixture
def seeded(aws):
    deps = get_deps()
    return presets.seed(PRESETS, PERSONAS, storage=deps.storage, render=render)


def get(client, path, user="alice"):
    resp = client.http.get(f"{PREFIX}{path}", headers=auth(user))
    return resp.status_code, resp.json_body


def all_pages(client, path):
    items, cursor = [], None
    while True:
        sep = "&" if "?" in path else "?"
        status, page = get(client, path + (f"{sep}cursor={cursor}" if cursor else ""))
        assert status == 200, page
        items += page["items"]
        cursor = page["nextCursor"]
        if not cursor:
            return items


def test_data_files_hold_enough_curated_entries():
    assert len(PRESETS["presets"]) >= 24 and len(PERSONAS["personaExamples"]) >= 20
    categories = {p["category"] for p in PRESETS["presets"]}
    assert {"professional", "casual", "sports", "fashion", "traditional", "creative"} <= categories
    ids = [p["id"] for p in PRESETS["presets"]]
    assert len(ids) == len(set(ids))


def test_seeded_gallery_lists_every_preset_with_preview_thumbnails(client, seeded):
    assert len(seeded.previews) == len(PRESETS["presets"]) and not seeded.preview_failures
    items = all_pages(client, "/presets?limit=10")
    assert sorted(p["id"] for p in items) == sorted(p["id"] for p in PRESETS["presets"])
    first = items[0]
    assert first["popularity"] == 0 and "X-Amz-Signature=" in first["thumbnailUrl"]
    key = presets.preview_thumbnail_key(first["id"])
    thumb = boto3.client("s3", region_name="us-east-1").get_object(Bucket=get_deps().settings.upload_bucket, Key=key)
    assert Image.open(io.BytesIO(thumb["Body"].read())).size == (300, 300)


def test_category_filter_returns_only_that_category(client, seeded):
    status, page = get(client, "/presets?category=traditional&limit=100")
    assert status == 200
    expected = {p["id"] for p in PRESETS["presets"] if p["category"] == "traditional"}
    assert expected and {p["id"] for p in page["items"]} == expected
    assert get(client, "/presets?category=nope")[1]["items"] == []
    assert get(client, "/presets?category=Not%20Valid")[0] == 400


def test_preset_by_id_has_persona_and_attributes(client, seeded):
    entry = PRESETS["presets"][0]
    status, preset = get(client, f"/presets/{entry['id']}")
    assert status == 200
    assert (preset["name"], preset["prompt"], preset["category"]) == (entry["name"], entry["prompt"], entry["category"])
    assert preset["personaName"] == entry["persona"]["personaName"]
    assert preset["gender"] == entry["attributes"]["gender"]
    status, body = get(client, "/presets/does-not-exist")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_gallery_reads_are_one_dynamodb_call(client, seeded):
    """A container's first gallery read (or its first after the TTL) is one Query, whatever the route."""
    entry = PRESETS["presets"][3]
    for path in ("/presets?limit=5", f"/presets?category={entry['category']}", f"/presets/{entry['id']}",
                 "/persona-examples"):
        presets.invalidate_cache()
        with DynamoDBCalls() as calls:
            assert get(client, path)[0] == 200
        assert calls.names == ["Query"], (path, calls.names)


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.at


def test_gallery_is_served_from_the_container_cache_until_the_ttl_passes(client, seeded, monkeypatch):
    """Within the TTL, lists, pages, categories and lookups by id make no DynamoDB call; after it,
    the next load reads the partition again and shows what changed meanwhile."""
    now = Clock()
    monkeypatch.setattr(clock, "now", now)
    presets.invalidate_cache()
    entry = PRESETS["presets"][2]
    with DynamoDBCalls() as first:
        assert get(client, "/presets?limit=100")[0] == 200
    assert first.names == ["Query"]

    # Another container counts a use: this one does not see it until its copy expires.
    key = {"PK": {"S": "PRESET"}, "SK": {"S": f"{entry['category']}#{entry['id']}"}}
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName=get_deps().settings.table_name, Key=key, UpdateExpression="ADD popularity :one",
        ExpressionAttributeValues={":one": {"N": "1"}})
    now.at += timedelta(seconds=presets.GALLERY_TTL_SECONDS - 1)
    with DynamoDBCalls() as within:
        items = all_pages(client, "/presets?limit=7")
        status, one = get(client, f"/presets/{entry['id']}")
        status_category, category = get(client, f"/presets?category={entry['category']}")
        assert get(client, "/presets/does-not-exist")[0] == 404
    assert within.names == []
    assert sorted(p["id"] for p in items) == sorted(p["id"] for p in PRESETS["presets"])
    assert (status, one["id"], one["popularity"]) == (200, entry["id"], 0)
    assert status_category == 200 and {p["category"] for p in category["items"]} == {entry["category"]}

    now.at += timedelta(seconds=2)
    with DynamoDBCalls() as after:
        status, one = get(client, f"/presets/{entry['id']}")
    assert after.names == ["Query"] and (status, one["popularity"]) == (200, 1)


def test_a_click_counted_by_this_container_shows_at_once(client, seeded):
    entry = PRESETS["presets"][0]
    assert get(client, f"/presets/{entry['id']}")[1]["popularity"] == 0
    presets.count_preset_use(presets.get_preset(entry["id"]))
    with DynamoDBCalls() as calls:
        assert get(client, f"/presets/{entry['id']}")[1]["popularity"] == 1
    assert calls.names == []


def test_seeding_twice_changes_nothing_and_keeps_counters(client, seeded):
    entry = PRESETS["presets"][0]
    presets.count_preset_use(presets.get_preset(entry["id"]))
    again = presets.seed(PRESETS, PERSONAS, storage=get_deps().storage, render=render)
    assert again.written == [] and again.previews == [] and again.removed == []
    assert get(client, f"/presets/{entry['id']}")[1]["popularity"] == 1


def test_changed_and_removed_entries_are_applied_and_popularity_survives(client, seeded):
    changed = copy.deepcopy(PRESETS)
    target = changed["presets"][0]
    target["prompt"] += ", golden hour light"
    gone = changed["presets"].pop()
    presets.count_preset_use(presets.get_preset(target["id"]))
    report = presets.seed(changed, PERSONAS, storage=get_deps().storage, render=render)
    assert report.written == [target["id"]] and report.previews == [target["id"]] and report.removed == [gone["id"]]
    status, preset = get(client, f"/presets/{target['id']}")
    assert preset["prompt"].endswith("golden hour light") and preset["popularity"] == 1
    assert get(client, f"/presets/{gone['id']}")[0] == 404


def test_persona_examples_list_and_count_uses(client, seeded):
    items = all_pages(client, "/persona-examples?limit=7")
    assert len(items) == len(PERSONAS["personaExamples"])
    example = items[0]
    assert example["personaName"] and example["personaAge"] and example["uses"] == 0
    resp = client.http.post(f"{PREFIX}/persona-examples/{example['id']}/use", headers=auth())
    assert resp.status_code == 200 and resp.json_body["uses"] == 1
    client.http.post(f"{PREFIX}/persona-examples/{example['id']}/use", headers=auth("bob"))
    category = example["category"]
    listed = {e["id"]: e for e in get(client, f"/persona-examples?category={category}&limit=100")[1]["items"]}
    assert listed[example["id"]]["uses"] == 2
    assert all(e["category"] == category for e in listed.values())
    assert client.http.post(f"{PREFIX}/persona-examples/nobody/use", headers=auth()).status_code == 404


def test_gallery_needs_a_token(client, seeded):
    resp = client.http.get(f"{PREFIX}/presets")
    assert resp.status_code == 401 and resp.json_body["error"]["code"] == "unauthorized"


def test_cursor_of_one_category_is_refused_for_another(client, seeded):
    page = get(client, "/presets?category=professional&limit=1")[1]
    assert page["nextCursor"]
    status, body = get(client, f"/presets?category=casual&cursor={page['nextCursor']}")
    assert status == 400, body


def test_one_click_on_a_preset_makes_an_avatar_and_counts_its_popularity(client, seeded, monkeypatch):
    from chalicelib import dependencies
    from tests.support.generation import deliver

    monkeypatch.setenv("GENERATION_PROVIDER", "offline")
    dependencies.reset()
    entry = PRESETS["presets"][0]
    pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=json.dumps({"name": "P"}).encode()).json_body["id"]
    headers = {**auth(), "Idempotency-Key": "preset-click-1"}
    payload = json.dumps({"projectId": pid, "name": "My exec"}).encode()
    first = client.http.post(f"{PREFIX}/presets/{entry['id']}/generate", headers=headers, body=payload)
    replay = client.http.post(f"{PREFIX}/presets/{entry['id']}/generate", headers=headers, body=payload)
    assert (first.status_code, replay.status_code) == (202, 200)
    assert first.json_body["id"] == replay.json_body["id"] and first.json_body["presetId"] == entry["id"]
    assert get(client, f"/presets/{entry['id']}")[1]["popularity"] == 1
    assert deliver("generation_worker") == 1
    avatar = get(client, f"/generations/{first.json_body['id']}")[1]["avatar"]
    assert (avatar["sourceType"], avatar["presetId"], avatar["name"]) == ("preset", entry["id"], "My exec")
    assert avatar["personaName"] == entry["persona"]["personaName"]
    assert avatar["gender"] == entry["attributes"]["gender"]


def test_preset_generate_into_another_users_project_is_404_and_not_counted(client, seeded):
    entry = PRESETS["presets"][1]
    pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=json.dumps({"name": "P"}).encode()).json_body["id"]
    resp = client.http.post(f"{PREFIX}/presets/{entry['id']}/generate", headers=auth("bob"),
                            body=json.dumps({"projectId": pid}).encode())
    assert resp.status_code == 404
    assert get(client, f"/presets/{entry['id']}")[1]["popularity"] == 0
    missing = client.http.post(f"{PREFIX}/presets/nope/generate", headers=auth(), body=json.dumps({"projectId": pid}).encode())
    assert missing.status_code == 404
