"""The pydantic-free query path (chalicelib.querystrings) answers exactly what the pydantic models
would, or steps aside: it never accepts what they refuse, nor reads a value differently."""
from __future__ import annotations

import random

import pydantic
import pytest

from chalicelib import schemas
from chalicelib.querystrings import SPECS, parse_plain

NAMES = sorted(SPECS)

VALUES = ["", "0", "1", "7", "20", "99", "100", "101", "020", " 20", "20 ", "+5", "5.0", "1e2", "-1", "abc",
          "uploaded", "text_to_image", "preset", "Uploaded", "ready", "rejected", "active", "all", "ALL",
          "portrait", "a" * 40, "a" * 41, "x" * 64, "x" * 65, "x" * 100, "x" * 101, "c" * 2048, "c" * 2049,
          " padded ", "tab\t", "\u00a0nbsp", "line\n", "z\x1c", "caf\u00e9", "\ud800", "with-dash", "UPPER",
          "emoji \U0001f600", "a b", "\u200b", "eyJ2IjoxfQ.sig_-", "null", "None"]


def pydantic_answer(name: str, params: dict):
    try:
        return getattr(schemas, name).model_validate(params, strict=False).model_dump()
    except pydantic.ValidationError:
        return "invalid"


def cases():
    rng = random.Random(9)
    for name in NAMES:
        yield name, {}
        fields = list(SPECS[name]) + ["unknown", "limit"]
        for field in fields:
            for value in VALUES:
                yield name, {field: value}
        for _ in range(300):
            chosen = rng.sample(fields, rng.randint(1, 3))
            yield name, {f: rng.choice(VALUES) for f in chosen}


def test_the_fields_and_defaults_are_the_models():
    for name in NAMES:
        defaults = getattr(schemas, name).model_validate({}).model_dump()
        assert {f: d for f, (d, _) in SPECS[name].items()} == defaults


def test_the_plain_path_agrees_with_pydantic_whenever_it_answers():
    answered = 0
    for name, params in cases():
        plain = parse_plain(name, params)
        if plain is None:
            continue
        answered += 1
        assert vars(plain) == pydantic_answer(name, params), (name, params)
    assert answered > 500  # it does take the common queries


@pytest.mark.parametrize("params", [{}, {"limit": "5"}, {"limit": "100", "cursor": "abc_-"}, {"ts": "123"}])
def test_common_list_queries_skip_pydantic(params):
    assert parse_plain("ListQuery", params) is not None


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"limit": " 5"}, {"cursor": "c" * 2049}])
def test_anything_doubtful_goes_to_pydantic(params):
    assert parse_plain("ListQuery", params) is None
