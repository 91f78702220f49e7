"""The pydantic-free query path (chalicelib.querystrings) against the pydantic models it stands in for,
on generated query strings (hypothesis).

- Sound: whenever `parse_plain` answers, the model accepts the same parameters and reads the same values.
- Complete on plain queries: a query the model accepts, written the plain way (printable ASCII, no
  padding, decimal limit), is answered without pydantic — else a loosened schema would quietly send
  every GET down the slow path.

`parse_plain` never words an error (it returns None and pydantic does), so there are no error codes or
fields to compare. What is generated comes from the models' JSON Schema — fields, enums, patterns, and
the boundaries of every length and range, each ±1 — so a rule changed on either side is exercised at
its new edge. PARSER_PROPERTIES_EXAMPLES and PARSER_PROPERTIES_RANDOM=1 run longer or unseeded.
"""
from __future__ import annotations

import functools
import os
import re
import string

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chalicelib import schemas
from chalicelib.querystrings import SPECS, parse_plain

NAMES = sorted(SPECS)
EXAMPLES = int(os.environ.get("PARSER_PROPERTIES_EXAMPLES", "300"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    derandomize=not os.environ.get("PARSER_PROPERTIES_RANDOM"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PER_FIELD = settings(SETTINGS, max_examples=max(EXAMPLES // 6, 20))

# Characters where engines, strip() and trim() and the control-character classes disagree or bite:
# C0/C1 controls, the separators Python strips but Rust does not (\x1c-\x1f), Unicode spaces, zero-width
# marks, bidi overrides and isolates, BOM, lone surrogates, non-ASCII digits, astral characters.
AWKWARD = ("\x00\x01\x08\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x7f\x80\x85\xa0\u1680\u180e\u2000\u200a\u200b\u200d"
           "\u200e\u200f\u2028\u2029\u202a\u202c\u202e\u202f\u205f\u2060\u2066\u2069\u3000\ufeff\ud800\udfff"
           "\u0661\uff11\u00e9\U0001f600")
CHARS = st.characters() | st.sampled_from(AWKWARD)
PLAIN_CHARS = st.sampled_from(string.ascii_letters + string.digits + string.punctuation + " ")
MIXED_CHARS = PLAIN_CHARS | CHARS
BLANKS = st.text(st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2000\u200b\u2028\u3000\ufeff"), min_size=1, max_size=4)


@functools.cache
def model_schema(name: str) -> dict:
    return getattr(schemas, name).model_json_schema()


def variants(prop: dict) -> list[dict]:
    return prop.get("anyOf", [prop])


def boundaries(node, spread: tuple[int, ...] = (-1, 0, 1)) -> set[int]:
    """Every length/range limit in a JSON Schema (and in its patterns' {m,n}), with its neighbours."""
    found: set[int] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("maxLength", "minLength", "maximum", "minimum") and isinstance(value, (int, float)):
                found.add(int(value))
            elif key == "pattern":
                found.update(int(n) for group in re.findall(r"\{(\d+)(?:,(\d*))?\}", value) for n in group if n)
            found |= boundaries(value, (0,))
    elif isinstance(node, list):
        for item in node:
            found |= boundaries(item, (0,))
    return {n + d for n in found for d in spread if n + d >= 0}


def sized_text(lengths: tuple[int, ...], chars, pattern: str | None = None) -> st.SearchStrategy[str]:
    """A string of one of the boundary lengths: a short motif (matching the pattern if any) repeated."""
    motifs = (st.text(chars, min_size=1, max_size=3) if pattern is None
              else st.from_regex(pattern, fullmatch=True, alphabet=chars).filter(bool))
    return st.builds(lambda n, motif: (motif * n)[:n], st.sampled_from(lengths), motifs)


@functools.cache  # built once: building strategies per draw costs more than drawing
def likely_values(name: str, field: str, chars, spread: tuple[int, ...] = (0,)) -> st.SearchStrategy[str]:
    """Values made to one parameter's rules in its JSON Schema, lengths and ranges at their limits
    (and with spread, beside them)."""
    options = []
    beside = spread == (-1, 1)
    for sub in variants(model_schema(name)["properties"][field]):
        lengths = tuple(sorted(boundaries(sub, spread) | (set() if beside else {0, 1, 2, 5})))
        if "enum" in sub and not beside:
            options.append(st.sampled_from(sub["enum"]))
        if sub.get("type") == "integer":
            options.append(st.sampled_from(lengths).map(str) | st.integers(sub["minimum"], sub["maximum"]).map(str))
        if "pattern" in sub and not beside:
            options.append(st.from_regex(sub["pattern"], fullmatch=True, alphabet=chars))
        if sub.get("type") == "string" and "enum" not in sub:
            options.append(sized_text(lengths, chars, sub.get("pattern")))
    return st.one_of(options or [st.nothing()])


def bent(text, char: str, at: int, how: str):
    if not isinstance(text, str):
        return text
    return {"insert": text[:at] + char + text[at:], "prefix": char + text, "suffix": text + char,
            "upper": text.upper(), "title": text.title(), "shorter": text[:-1],
            "zero": "0" + text, "plus": "+" + text, "minus": "-" + text, "float": text + ".0", "exp": text + "e0",
            "underscore": text[:1] + "_" + text[1:], "hex": "0x" + text, "huge": text + "0" * 30}[how]


@functools.cache
def odd_values(name: str, field: str) -> st.SearchStrategy:
    """Near misses: lengths and ranges just beside their limits, a likely value bent (an awkward
    character in it or around it, other case, other number notations), other types, and junk."""
    if field not in model_schema(name)["properties"]:  # unknown to the model
        return st.text(CHARS, max_size=5)
    hows = ["insert", "prefix", "suffix", "upper", "title", "shorter", "zero", "plus", "minus", "float", "exp",
            "underscore", "hex", "huge"]
    options = [
        likely_values(name, field, PLAIN_CHARS, (-1, 1)), likely_values(name, field, PLAIN_CHARS, (-1, 1)),
        likely_values(name, field, PLAIN_CHARS, (-1, 1)), likely_values(name, field, CHARS, (-1, 0, 1)),
        st.builds(bent, likely_values(name, field, PLAIN_CHARS) | likely_values(name, field, MIXED_CHARS),
                  st.sampled_from(AWKWARD + string.punctuation), st.integers(0, 70), st.sampled_from(hows)),
        BLANKS | st.builds(lambda blank, text: blank + text, BLANKS, likely_values(name, field, PLAIN_CHARS)),
        st.text(CHARS, max_size=12), st.none() | st.integers() | st.booleans() | st.lists(st.text(max_size=3), max_size=2),
        st.sampled_from(["", "-0", "\u0661\u0662", "\uff11", "NaN", "true", "None", "9" * 5000])]
    return st.integers(0, len(options) - 1).flatmap(lambda kind: options[kind])


@functools.cache
def likely_queries(name: str, chars) -> st.SearchStrategy[dict]:
    fields = model_schema(name)["properties"]
    return st.fixed_dictionaries({}, optional={field: likely_values(name, field, chars) for field in fields})


@st.composite
def near_misses(draw, name: str, field: str) -> dict:
    """Valid parameters of the model, with one of them (or an unknown one) a near miss."""
    params = draw(likely_queries(name, draw(st.sampled_from([PLAIN_CHARS, PLAIN_CHARS, MIXED_CHARS]))))
    params[field] = draw(odd_values(name, field))
    return params


@st.composite
def plain_queries(draw) -> tuple[str, dict]:
    """Valid-looking parameters written the plain way: printable ASCII, no padding, limit in decimal
    without a leading zero."""
    name = draw(st.sampled_from(NAMES))
    params = draw(likely_queries(name, PLAIN_CHARS))
    return name, {f: v for f, v in params.items() if v == v.strip(" ") and (f != "limit" or re.fullmatch(r"[1-9][0-9]*", v))}


def pydantic_answer(name: str, params: dict):
    """As chalicelib.api.http.parse_query asks it: lax mode, since a query string is text."""
    try:
        return getattr(schemas, name).model_validate(params, strict=False).model_dump()
    except pydantic.ValidationError:
        return "invalid"


def typed(value):
    """Values with their types, so that 1 == True == 1.0 do not hide a difference."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return type(value).__name__, value


def assert_agree(name: str, params: dict) -> None:
    plain = parse_plain(name, params)
    if plain is not None:
        answer = pydantic_answer(name, params)
        assert answer != "invalid", "the plain path took a query the model refuses"
        assert typed(vars(plain)) == typed(answer)


FIELDS = [(name, field) for name in NAMES for field in [*model_schema(name)["properties"], "unknown"]]


@pytest.mark.parametrize(("name", "field"), FIELDS, ids=[f"{n}.{f}" for n, f in FIELDS])
@PER_FIELD
@given(data=st.data())
def test_whenever_the_plain_path_answers_pydantic_reads_the_same(name, field, data):
    assert_agree(name, data.draw(near_misses(name, field)))


@SETTINGS
@given(plain_queries())
def test_a_plain_query_pydantic_accepts_skips_pydantic(query):
    name, params = query
    answer = pydantic_answer(name, params)
    if answer != "invalid":
        plain = parse_plain(name, params)
        assert plain is not None, "a plainly valid query was left to pydantic"
        assert typed(vars(plain)) == typed(answer)


@pytest.mark.parametrize(("name", "field"), FIELDS, ids=[f"{n}.{f}" for n, f in FIELDS])
def test_every_character_in_every_parameter(name, field):
    """Exhaustive where sampling is thin: each ASCII character, and each awkward one, alone and at the
    start, middle and end of a valid value (character classes are where a copied rule drifts)."""
    valid = {"limit": "20", "sourceType": "preset", "status": "all" if name == "GenerationListQuery" else "ready"}
    base = valid.get(field, "ab-c")
    for char in [chr(c) for c in range(128)] + list(AWKWARD):
        for value in (char, char + base, base[:2] + char + base[2:], base + char):
            assert_agree(name, {field: value})


def test_the_fields_defaults_and_choices_are_the_models():
    """The structure, compared whole: fields, defaults, and the allowed words of each enum (a word
    added on either side is not something sampling would stumble on)."""
    for name in NAMES:
        defaults = getattr(schemas, name).model_validate({}).model_dump()
        assert {f: d for f, (d, _) in SPECS[name].items()} == defaults
        for field, prop in model_schema(name)["properties"].items():
            enums = [sub["enum"] for sub in variants(prop) if "enum" in sub]
            if enums:
                assert SPECS[name][field][1].__self__ == frozenset(enums[0]), (name, field)


# Which path a query takes is not equivalence but cost: the common ones must not build pydantic, and
# what the plain path is unsure of (padding, other spellings of a number) is left to pydantic.

@pytest.mark.parametrize("params", [{}, {"limit": "5"}, {"limit": "100", "cursor": "abc_-"}, {"ts": "123"}])
def test_common_list_queries_skip_pydantic(params):
    assert parse_plain("ListQuery", params) is not None


@pytest.mark.parametrize("params", [{"limit": " 5"}, {"limit": "05"}, {"limit": "5.0"}, {"cursor": "caf\u00e9"}])
def test_anything_doubtful_goes_to_pydantic(params):
    assert pydantic_answer("ListQuery", params) != "invalid"
    assert parse_plain("ListQuery", params) is None


def edge_queries():
    """Every limit in the models' JSON Schema, at it and either side, one parameter at a time:
    deterministic, so that no limit depends on sampling reaching it."""
    for name in NAMES:
        for field, prop in model_schema(name)["properties"].items():
            for sub in variants(prop):
                for n in sorted(boundaries(sub)):
                    if sub.get("type") == "integer":
                        yield f"{name}.{field}={n}", name, {field: str(n)}
                    elif sub.get("type") == "string" and "enum" not in sub:
                        yield f"{name}.{field} length {n}", name, {field: ("ab-c" * n)[:n]}


EDGES = list(edge_queries())


@pytest.mark.parametrize(("name", "params"), [(n, p) for _, n, p in EDGES], ids=[i for i, _, _ in EDGES])
def test_at_and_beside_every_limit(name, params):
    assert_agree(name, params)
    if pydantic_answer(name, params) != "invalid":
        assert parse_plain(name, params) is not None, "a plainly valid query was left to pydantic"
