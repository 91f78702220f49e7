"""Stream record → events (chalicelib/events/mapping.py): which changes announce what, and stable ids."""
from __future__ import annotations

import copy

import pytest

from chalicelib.events import mapping as events
from chalicelib.aws.models import (
    AttributesMap,
    AvatarModel,
    GenerationModel,
    PersonaMap,
    ProjectModel,
    avatar_pk,
    generation_pk,
    project_sk,
    user_pk,
)


def avatar_image(**changes) -> dict:
    fields = dict(id="ava_1", user_id="u1", project_id="prj_1", name="Mia", name_lower="mia",
                  source_type="uploaded", status="ready", image_key="images/u1/ava_1.png",
                  thumbnail_key="thumbs/u1/ava_1.webp", width=512, height=512, format="PNG", size_bytes=1234,
                  persona=PersonaMap(name="Mia", age=30), attributes=AttributesMap(gender="female"),
                  usage_count=0, created_at="2026-12-01T10:00:00.000Z", updated_at="2026-12-01T10:00:05.000Z",
                  gsi1pk="U#u1#P#prj_1", gsi1sk="A#ava_1")
    fields.update(changes)
    return AvatarModel(avatar_pk("u1", "ava_1"), "META", **fields).serialize()


def generation_image(**changes) -> dict:
    fields = dict(id="gen_1", user_id="u1", project_id="prj_1", status="processing", progress=50,
                  created_at="2026-12-01T10:00:00.000Z", updated_at="2026-12-01T10:00:10.000Z",
                  gsi1pk="U#u1#P#prj_1", gsi1sk="G#gen_1", prompt="a portrait")
    fields.update(changes)
    return GenerationModel(generation_pk("u1", "gen_1"), "META", **fields).serialize()


def project_image() -> dict:
    return ProjectModel(user_pk("u1"), project_sk("prj_1"), id="prj_1", user_id="u1", name="P", description="",
                        avatar_count=2, created_at="2026-12-01T09:00:00.000Z",
                        updated_at="2026-12-01T09:00:00.000Z").serialize()


def record(name: str, old: dict | None, new: dict | None, event_id: str = "e1", approx: int = 1764583200,
           seq: str = "100") -> dict:
    image = new or old
    keys = {"PK": image["PK"], "SK": image["SK"]}
    change = {"Keys": keys, "ApproximateCreationDateTime": approx, "SequenceNumber": seq,
              "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if old is not None:
        change["OldImage"] = old
    if new is not None:
        change["NewImage"] = new
    return {"eventID": event_id, "eventName": name, "eventSource": "aws:dynamodb", "dynamodb": change}


def types(rec: dict) -> list[str]:
    return [e["type"] for e in events.from_stream_record(rec)]


# ---- avatars --------------------------------------------------------------------------------------

def test_avatar_becoming_ready_announces_ready_with_the_api_shape_without_urls():
    old = avatar_image(status="processing", image_key=None, thumbnail_key=None)
    [event] = events.from_stream_record(record("MODIFY", old, avatar_image()))
    assert event["type"] == "avatar.ready"
    assert event["id"].startswith("evt_") and len(event["id"]) == 30
    assert event["timestamp"] == "2026-12-01T10:00:05.000Z"
    data = event["data"]
    assert data["id"] == "ava_1" and data["projectId"] == "prj_1" and data["userId"] == "u1"
    assert data["status"] == "ready" and data["personaName"] == "Mia" and data["gender"] == "female"
    assert "imageUrl" not in data and "thumbnailUrl" not in data
    assert not any("http" in str(v) for v in data.values())


def test_avatar_created_ready_from_a_preset_announces_ready():
    assert types(record("INSERT", None, avatar_image(source_type="preset"))) == ["avatar.ready"]


def test_avatar_rejected_announces_rejected_with_the_reason():
    old = avatar_image(status="processing")
    [event] = events.from_stream_record(record("MODIFY", old, avatar_image(status="rejected",
                                                                           status_reason="not an image")))
    assert event["type"] == "avatar.rejected" and event["data"]["statusReason"] == "not an image"


@pytest.mark.parametrize("change", [
    {"name": "Mia B.", "name_lower": "mia b."},
    {"persona": PersonaMap(name="Mia", age=31)},
    {"attributes": AttributesMap(gender="female", style="anime")},
    {"image_key": "images/u1/ava_1-v2.png", "width": 640},
])
def test_a_visible_change_of_a_ready_avatar_announces_updated(change):
    new = avatar_image(updated_at="2026-12-01T11:00:00.000Z", **change)
    assert types(record("MODIFY", avatar_image(), new)) == ["avatar.updated"]


def test_a_crop_field_added_by_the_image_work_counts_as_an_update():
    old, new = avatar_image(), avatar_image()
    new["cropBox"] = {"M": {"x": {"N": "0"}, "y": {"N": "10"}}}
    assert types(record("MODIFY", old, new)) == ["avatar.updated"]


def test_usage_counters_never_announce_an_update():
    new = avatar_image(usage_count=7, last_used_at="2026-12-01T12:00:00.000Z", updated_at="2026-12-01T12:00:00.000Z")
    assert types(record("MODIFY", avatar_image(), new)) == []


def test_deleting_an_announced_avatar_announces_deleted_at_the_deletion_time():
    [event] = events.from_stream_record(record("REMOVE", avatar_image(), None, approx=1796126400))
    assert event["type"] == "avatar.deleted" and event["data"]["id"] == "ava_1"
    assert event["timestamp"] == "2026-12-01T12:00:00.000Z"


def test_an_upload_that_never_arrived_expires_silently():
    pending = avatar_image(status="uploading", image_key=None, ttl=1764590400)
    assert types(record("INSERT", None, pending)) == []
    assert types(record("REMOVE", pending, None)) == []


# ---- generations and projects ---------------------------------------------------------------------

@pytest.mark.parametrize("status,expected", [("completed", "generation.completed"), ("failed", "generation.failed"),
                                             ("cancelled", "generation.cancelled")])
def test_a_generation_reaching_a_final_state_announces_it(status, expected):
    new = generation_image(status=status, avatar_id="ava_1", error_message="boom" if status == "failed" else None)
    [event] = events.from_stream_record(record("MODIFY", generation_image(), new))
    assert event["type"] == expected
    assert event["data"]["id"] == "gen_1" and event["data"]["status"] == status and "avatar" not in event["data"]


def test_generation_progress_announces_nothing():
    assert types(record("MODIFY", generation_image(), generation_image(progress=80))) == []
    done = generation_image(status="completed")
    assert types(record("MODIFY", done, generation_image(status="completed", progress=100))) == []


def test_deleting_a_project_announces_project_deleted():
    [event] = events.from_stream_record(record("REMOVE", project_image(), None))
    assert event["type"] == "project.deleted"
    assert event["data"] == {"id": "prj_1", "name": "P", "description": "", "avatarCount": 2,
                             "createdAt": "2026-12-01T09:00:00.000Z", "updatedAt": "2026-12-01T09:00:00.000Z",
                             "userId": "u1"}


@pytest.mark.parametrize("pk,sk", [("U#u1", "STATS"), ("U#u1", "DAY#2026-12-01"), ("U#u1#A#ava_1", "USE#x#y"),
                                   ("U#u1", "WH#whk_1"), ("PRESET", "studio#p1")])
def test_bookkeeping_items_announce_nothing(pk, sk):
    image = {"PK": {"S": pk}, "SK": {"S": sk}, "status": {"S": "ready"}}
    assert types(record("INSERT", None, image)) == [] and types(record("REMOVE", image, None)) == []


# ---- ids --------------------------------------------------------------------------------------------

def test_a_replayed_record_gives_the_same_event_id():
    old = avatar_image(status="processing")
    first = events.from_stream_record(record("MODIFY", old, avatar_image(), event_id="a"))
    # The same change read again: another stream eventID, another arrival time.
    again = events.from_stream_record(record("MODIFY", copy.deepcopy(old), avatar_image(), event_id="b",
                                             approx=1764600000))
    assert first == again


def test_different_changes_of_one_item_get_different_ids():
    a = events.from_stream_record(record("MODIFY", avatar_image(), avatar_image(name="A", name_lower="a")))
    b = events.from_stream_record(record("MODIFY", avatar_image(), avatar_image(name="B", name_lower="b")))
    ready = events.from_stream_record(record("MODIFY", avatar_image(status="processing"), avatar_image()))
    assert len({a[0]["id"], b[0]["id"], ready[0]["id"]}) == 3


def test_the_same_transition_twice_gets_two_ids():
    # GIVEN a generation that fails, is retried and fails again with the same fields
    # WHEN the two transitions come as two stream records (two sequence numbers)
    # THEN they are two events, not one (receivers and the delivered marker dedupe on the id).
    first = events.from_stream_record(record("MODIFY", generation_image(), generation_image(status="failed"),
                                             seq="100"))
    second = events.from_stream_record(record("MODIFY", generation_image(), generation_image(status="failed"),
                                              seq="205"))
    assert [e["type"] for e in first + second] == ["generation.failed", "generation.failed"]
    assert first[0]["id"] != second[0]["id"]


def test_two_events_of_one_record_get_two_ids():
    both = events.from_stream_record(record("MODIFY", avatar_image(status="processing", name="A", name_lower="a"),
                                            avatar_image(), seq="300"))
    assert len({e["id"] for e in both}) == len(both)


def test_every_type_has_a_schema_in_docs():
    from tests.support.infra import ROOT

    for event_type in events.EVENT_TYPES:
        assert (ROOT / "docs" / "schemas" / f"{event_type}.json").exists(), event_type


def _schema(event_type: str) -> dict:
    import json

    from tests.support.infra import ROOT

    return json.loads((ROOT / "docs" / "schemas" / f"{event_type}.json").read_text())


@pytest.mark.parametrize("rec", [
    record("MODIFY", avatar_image(status="processing"), avatar_image()),
    record("MODIFY", avatar_image(status="processing"), avatar_image(status="rejected", status_reason="blurry")),
    record("MODIFY", avatar_image(), avatar_image(name="New", name_lower="new")),
    record("REMOVE", avatar_image(), None),
    record("MODIFY", generation_image(), generation_image(status="completed", avatar_id="ava_01m8vjv49rxnk06kjgh8jwha1c")),
    record("MODIFY", generation_image(), generation_image(status="failed", error_message="provider refused")),
    record("MODIFY", generation_image(), generation_image(status="cancelled")),
    record("REMOVE", project_image(), None),
], ids=lambda r: r["eventName"])
def test_events_match_their_published_json_schema(rec):
    from jsonschema import Draft202012Validator

    [event] = events.from_stream_record(rec)
    # The fixtures' short ids (ava_1) are not real ones: give the data real-looking ids.
    for key, prefix in (("id", event["data"]["id"].split("_")[0]), ("projectId", "prj")):
        if key in event["data"]:
            event["data"][key] = f"{prefix}_01m8vjv49rxnk06kjgh8jwha1c"
    errors = [e.message for e in Draft202012Validator(_schema(event["type"])).iter_errors(event)]
    assert errors == []


def test_a_test_event_matches_its_schema():
    from jsonschema import Draft202012Validator

    event = events.test_event("whk_01m8vjv49rxnk06kjgh8jwha1c", "u1", "01m8vjv49rxnk06kjgh8jwha1c",
                              "2026-12-01T10:00:00.000Z")
    assert list(Draft202012Validator(_schema("webhook.test")).iter_errors(event)) == []


# ---- memberships (issue 30) -----------------------------------------------------------------------

def membership_image(role: str = "editor") -> dict:
    from chalicelib.teams import store as team_store

    return team_store.new_membership("prj_1", "m1", home="u1", role=role, added_by="u1",
                                     now="2026-12-01T11:00:00.000Z").serialize()


def test_a_membership_added_or_removed_is_announced_to_the_projects_home():
    added = record("INSERT", None, membership_image())
    removed = record("REMOVE", membership_image(), None, seq="101")
    assert types(added) == ["project.member_added"] and types(removed) == ["project.member_removed"]
    assert events.user_of(added) == events.user_of(removed) == "u1"  # the home's webhooks, not "m1"'s own
    assert events.audience_of(removed) == ("prj_1", "m1")  # the project's members, and the one who left
    [event] = events.from_stream_record(added)
    assert event["data"] == {"projectId": "prj_1", "userId": "m1", "role": "editor", "addedBy": "u1",
                             "addedAt": "2026-12-01T11:00:00.000Z", "homeUserId": "u1"}


def test_a_role_change_and_the_home_items_announce_nothing():
    assert types(record("MODIFY", membership_image("viewer"), membership_image("owner"))) == []
    from chalicelib.aws.models import ItemHomeModel, ProjectHomeModel

    for image in (ProjectHomeModel("PRJ#prj_1", "HOME", home="u1", project_id="prj_1").serialize(),
                  ItemHomeModel("AVA#ava_1", "HOME", home="u1", project_id="prj_1").serialize()):
        assert types(record("INSERT", None, image)) == []
        assert events.audience_of(record("INSERT", None, image)) == (None, None)


def test_a_shared_projects_avatar_and_generation_events_name_their_project():
    assert events.audience_of(record("MODIFY", avatar_image(status="uploading"), avatar_image())) == ("prj_1", None)
    assert events.audience_of(record("MODIFY", generation_image(), generation_image(status="completed"))) == (
        "prj_1", None)
