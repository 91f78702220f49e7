"""The published contract (docs/schemas/usage-event.v1.json) and the consumer's pydantic model
(chalicelib.schemas.UsageEvent) accept and reject the same events."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from chalicelib.schemas import UsageEvent

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "usage-event.v1.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
# "date-time" is checked by jsonschema only when the optional rfc3339-validator happens to be installed
# (another dev tool brings it in): left out, so every machine validates the same way. The consumer's
# own checks of occurredAt are asserted below.
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker(
    formats=[name for name in jsonschema.FormatChecker.checkers if name != "date-time"]))

BASE = {
    "eventId": "01JDQ6Y3M2S8Q4W6E8R0T2Y4U6",
    "userId": "user_123",
    "avatarId": "ava_01jdq6x9k3v5b7n9m1q3w5e7r9",
    "appId": "pose-generator",
    "appName": "Pose Generator",
    "action": "pose.generated",
    "occurredAt": "2026-01-05T10:15:30.120Z",
}
DROP = object()


def variant(**changes):
    event = dict(BASE)
    for key, value in changes.items():
        if value is DROP:
            event.pop(key, None)
        else:
            event[key] = value
    return event


VALID = {
    "minimal": variant(),
    "all fields": variant(referenceId="job 8812", referenceType="pose_job", metadata={"poses": 4, "hd": True}),
    "nulls for optional fields": variant(referenceId=None, referenceType=None, metadata=None),
    "offset time, nanoseconds": variant(occurredAt="2026-01-05T12:15:30.123456789+02:00"),
    "no fraction": variant(occurredAt="2026-01-05T10:15:30Z"),
    "uuid event id": variant(eventId="3f2c1b0a-9d8e-4f7a-b6c5-d4e3f2a1b0c9"),
    "128-char event id": variant(eventId="e" * 128),
    "64-char app id": variant(appId="a" * 64),
    "unicode app name": variant(appName="Générateur de poses ✨"),
    "metadata scalars": variant(metadata={"s": "x" * 500, "i": -10**15, "f": 0.5, "b": False, "n": None}),
    "20 metadata keys": variant(metadata={f"k{i}": i for i in range(20)}),
    "email-like user id": variant(userId="jane.doe@example.com"),
}

INVALID = {
    "missing eventId": variant(eventId=DROP),
    "missing occurredAt": variant(occurredAt=DROP),
    "unknown field": variant(avatarID="ava_x"),
    "empty event id": variant(eventId=""),
    "event id with space": variant(eventId="a b"),
    "129-char event id": variant(eventId="e" * 129),
    "user id with #": variant(userId="alice#A#x"),
    "avatar id with slash": variant(avatarId="ava/1"),
    "upper-case app id": variant(appId="PoseGen"),
    "app id with trailing dash": variant(appId="pose-"),
    "65-char app id": variant(appId="a" * 65),
    "blank app name": variant(appName="   "),
    "101-char app name": variant(appName="n" * 101),
    "empty action": variant(action=""),
    "numeric action": variant(action=7),
    "empty reference id": variant(referenceId=""),
    "date without time": variant(occurredAt="2026-01-05"),
    "time without zone": variant(occurredAt="2026-01-05T10:15:30"),
    "epoch number": variant(occurredAt=1767607530),
    "metadata list": variant(metadata=[1, 2]),
    "metadata nested": variant(metadata={"a": {"b": 1}}),
    "metadata 21 keys": variant(metadata={f"k{i}": i for i in range(21)}),
    "metadata bad key": variant(metadata={"a b": 1}),
    "metadata long string": variant(metadata={"s": "x" * 501}),
    "metadata huge number": variant(metadata={"n": 10**16}),
    "not an object": ["eventId"],
}


def pydantic_accepts(event) -> bool:
    try:
        UsageEvent.model_validate_json(json.dumps(event))
        return True
    except ValidationError:
        return False


def test_schema_is_valid_draft_2020_12_with_a_versioned_id():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"].endswith("/usage-event.v1.json")
    for example in SCHEMA["examples"]:
        assert VALIDATOR.is_valid(example) and pydantic_accepts(example)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_events_pass_both(name):
    event = VALID[name]
    assert VALIDATOR.is_valid(event), list(VALIDATOR.iter_errors(event))
    assert pydantic_accepts(event)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_events_fail_both(name):
    event = INVALID[name]
    assert not VALIDATOR.is_valid(event)
    assert not pydantic_accepts(event)


def test_required_and_properties_match_the_model():
    fields = UsageEvent.model_fields
    assert set(SCHEMA["properties"]) == set(fields)
    assert set(SCHEMA["required"]) == {name for name, f in fields.items() if f.is_required()}


@pytest.mark.parametrize("make_event", [
    # Made when the test runs, not when it is collected: a slow run must not turn "future" into "past".
    lambda: variant(occurredAt=(datetime.now(timezone.utc) + timedelta(minutes=10)).isoformat()),
    lambda: variant(occurredAt="2026-02-30T10:00:00Z"),
    lambda: variant(metadata={f"k{i}": "x" * 200 for i in range(11)}),
], ids=["far future", "impossible date", "metadata over 2 KB"])
def test_rules_beyond_the_schema_are_stated_in_it_and_enforced(make_event):
    """The schema cannot express these; its description names them and the consumer enforces them."""
    event = make_event()
    assert VALIDATOR.is_valid(event)
    assert not pydantic_accepts(event)
    description = SCHEMA["description"]
    assert "300 seconds in the future" in description and "2048 bytes" in description


def test_occurred_at_is_stored_in_one_sortable_form():
    event = UsageEvent.model_validate_json(json.dumps(variant(occurredAt="2026-01-05T12:15:30.123456789+02:00")))
    assert event.occurredAt == "2026-01-05T10:15:30.123Z"
    assert UsageEvent.model_validate_json(json.dumps(variant(occurredAt="2026-01-05T10:15:30Z"))).occurredAt \
        == "2026-01-05T10:15:30.000Z"
