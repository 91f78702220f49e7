"""One attribute vocabulary (issue 28): old spellings (`sports`, `young_adult`) are accepted, stored and
answered in the current one (`sporty`, `young-adult`), and filters find items stored the old way."""
from __future__ import annotations

import json
from pathlib import Path

from chalicelib.avatars import service as avatars

from chalicelib.avatars import vocabulary
from chalicelib.aws.models import AvatarModel
from tests.functional.conftest import PREFIX, auth
from tests.functional.test_uploads import create_project, get_avatar, upload
from tests.support import images as img

PRESETS = Path(__file__).parents[2] / "data" / "presets.v1.json"


def names(client, pid, query):
    resp = client.http.get(f"{PREFIX}/projects/{pid}/avatars{query}", headers=auth())
    assert resp.status_code == 200, resp.body
    return sorted(a["name"] for a in resp.json_body["items"])


def test_old_spellings_are_accepted_and_answered_in_the_current_one(client, aws):
    # GIVEN an upload sent with the presets' old words
    pid = create_project(client)
    avatar = upload(client, aws, pid, img.jpeg(64, 48), name="Dewi", style="sports", ageRange="young_adult")
    # THEN the API answers (and stores) the current spelling
    got = get_avatar(client, avatar["id"])
    assert (got["style"], got["ageRange"]) == ("sporty", "young-adult")
    assert names(client, pid, "?style=sporty") == ["Dewi"]
    assert names(client, pid, "?style=sports") == ["Dewi"]


def test_items_stored_under_an_old_spelling_are_found_by_the_current_one(client, aws):
    # GIVEN an avatar stored before the vocabulary changed (its item still says "sports")
    pid = create_project(client)
    avatar = upload(client, aws, pid, img.jpeg(64, 48), name="Old", style="casual")
    model = avatars.get_avatar("alice", avatar["id"])
    model.update(actions=[AvatarModel.attributes.style.set("sports"), AvatarModel.attributes.age_range.set("young_adult")])
    # WHEN the page filters by the current word THEN it is found, and read back in the current words
    assert names(client, pid, "?style=sporty") == ["Old"]
    got = get_avatar(client, avatar["id"])
    assert (got["style"], got["ageRange"]) == ("sporty", "young-adult")


def test_presets_use_only_current_spellings():
    presets = json.loads(PRESETS.read_text())["presets"]
    for preset in presets:
        for key, value in preset["attributes"].items():
            assert vocabulary.canonical(key, value) == value, (preset["id"], key, value)
