"""The consumer's pydantic-free reader (chalicelib.usage_plain) answers exactly what
chalicelib.schemas.UsageEvent would, or steps aside: it never accepts an event the model refuses,
nor reads one differently."""
from __future__ import annotations

import json
import random

import pydantic
import pytest

from chalicelib.schemas import UsageEvent
from chalicelib.usage_plain import read_plain
from tests.unit.test_usage_event_schema import BASE, INVALID, VALID, variant

ODD_VALUES = [None, "", " ", "x", "a b", "\t", "\u00a0", "\x1c", "é", "\ud800", "A" * 65, "a" * 129, 0, 1, -1, 1.5,
              True, [], {}, "pose-generator", "pose--generator", "2026-01-05T10:15:30Z", "2026-01-05T10:15:30.1+02:00",
              "2026-13-05T10:15:30Z", "9999-01-01T00:00:00Z", "2026-01-05T10:15:30z", "job\n", "\u2003name"]
ODD_METADATA = [{}, {"k": 1}, {"k": 1.0}, {"k": True}, {"k": None}, {"k": "v"}, {"k": 10**15}, {"k": 10**15 + 1},
                {"k": -1e15}, {"k": 1e16}, {"k": [1]}, {"k": {"a": 1}}, {"a b": 1}, {"k" * 64: 1}, {"k" * 65: 1},
                {f"k{i}": "x" * 120 for i in range(17)}, {"k": "\ud800"}, {"k": "é" * 500}]
RAW_BODIES = ['{"eventId": NaN}', "not json", "", "[]", "null", '"text"', "{" * 5000, '{"a":1,"a":2}',
              json.dumps(BASE).replace('"eventId"', '"eventId": "dup", "eventId"'), "\ufeff" + json.dumps(BASE),
              json.dumps(BASE) + " trailing", " \n" + json.dumps(BASE) + "\n",
              json.dumps(variant(metadata={"n": float("nan")}))]


def model_answer(body):
    try:
        return UsageEvent.model_validate_json(body).model_dump()
    except pydantic.ValidationError:
        return "invalid"


def bodies():
    for event in list(VALID.values()) + list(INVALID.values()):
        yield json.dumps(event)
    yield from RAW_BODIES
    yield json.dumps(BASE).encode()
    yield json.dumps(variant(appName="Générateur ✨")).encode("utf-8")
    rng = random.Random(9)
    fields = list(BASE) + ["referenceId", "referenceType", "metadata", "extra"]
    for _ in range(1500):
        event = dict(BASE)
        for field in rng.sample(fields, rng.randint(1, 2)):
            pool = ODD_METADATA + [None] if field == "metadata" else ODD_VALUES + [BASE.get(field, "x")]
            event[field] = rng.choice(pool)
        yield json.dumps(event, ensure_ascii=rng.random() < 0.5)


def test_the_plain_reader_agrees_with_the_model_whenever_it_answers():
    answered = 0
    for body in bodies():
        plain = read_plain(body)
        if plain is None:
            continue
        answered += 1
        assert vars(plain) == model_answer(body), body
    assert answered > 100  # it does take valid events


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_valid_example_is_read_without_pydantic(name):
    assert read_plain(json.dumps(VALID[name])) is not None


@pytest.mark.parametrize("name", sorted(INVALID))
def test_no_invalid_example_is_read(name):
    assert read_plain(json.dumps(INVALID[name])) is None
