"""The consumer's pydantic-free reader (chalicelib.usage.plain) against chalicelib.schemas.UsageEvent,
on generated message bodies (hypothesis).

- Sound: whenever `read_plain` answers, `UsageEvent.model_validate_json` (what the consumer falls back
  to) accepts the same body and reads the same values, types included (True is not 1, 1.0 is not 1).
- Complete on plain events: an event the model accepts, serialised by json.dumps with printable-ASCII
  text fields, is read without pydantic — else a loosened schema would quietly send every message
  down the slow path.

`read_plain` steps aside (None) on purpose, and the model then decides, for: duplicate keys, NaN or
Infinity, appName/referenceId whose only visible characters are non-ASCII (`\\S` is Unicode-aware in
pydantic's engine; the reader does not guess), and anything not UTF-8. So "fast refuses, model accepts"
is allowed in general and only checked on plain events. It words no errors, so there are no error
codes or fields to compare.

What is generated comes from the model's JSON Schema — fields, patterns, and every length, range
and count limit ±1 — so a rule changed on either side is exercised at its new edge.
PARSER_PROPERTIES_EXAMPLES and PARSER_PROPERTIES_RANDOM=1 run longer or unseeded.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
import string
from datetime import datetime, timedelta, timezone

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chalicelib.schemas import USAGE_METADATA_MAX_BYTES, UsageEvent
from chalicelib.usage.plain import read_plain
from tests.unit.test_usage_event_schema import VALID

EXAMPLES = int(os.environ.get("PARSER_PROPERTIES_EXAMPLES", "300"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    derandomize=not os.environ.get("PARSER_PROPERTIES_RANDOM"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PER_FIELD = settings(SETTINGS, max_examples=max(EXAMPLES // 5, 20))

# Characters where regex engines, Unicode classes and the control-character rules disagree or bite:
# C0/C1 controls (NUL first), Unicode spaces, zero-width marks, bidi overrides and isolates, BOM, lone
# surrogates, non-ASCII digits and letters, astral characters.
AWKWARD = ("\x00\x01\x08\t\n\x0b\x0c\r\x1c\x1f \x7f\x80\x85\xa0\u1680\u180e\u2000\u200a\u200b\u200d\u200e"
           "\u2028\u2029\u202a\u202e\u202f\u205f\u2060\u2066\u2069\u3000\ufeff\ud800\udfff\u0661\uff21\u0130"
           "\u212a\u00e9\U0001f600")
CHARS = st.characters() | st.sampled_from(AWKWARD)
PLAIN_CHARS = st.sampled_from(string.ascii_letters + string.digits + string.punctuation + " ")
MIXED_CHARS = PLAIN_CHARS | CHARS
# Generation must not depend on the clock (hypothesis replays draws), so one "now" for the session.
NOW = datetime.now(timezone.utc).replace(tzinfo=None)
SCHEMA = UsageEvent.model_json_schema()
PROPS = SCHEMA["properties"]
REQUIRED = SCHEMA["required"]
METADATA = next(v for v in PROPS["metadata"]["anyOf"] if v.get("type") == "object")
(KEY_PATTERN, VALUE_SCHEMA), = METADATA["patternProperties"].items()


def variants(prop: dict) -> list[dict]:
    return prop.get("anyOf", [prop])


def boundaries(node, spread: tuple[int, ...] = (-1, 0, 1)) -> set[int]:
    """Every length/count limit in a JSON Schema (and in its patterns' {m,n}), with its neighbours."""
    found: set[int] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("maxLength", "minLength", "maxProperties"):
                found.add(value)
            elif key == "pattern" or key == "patternProperties":
                for pattern in [value] if key == "pattern" else list(value):
                    found.update(int(n) for group in re.findall(r"\{(\d+)(?:,(\d*))?\}", pattern) for n in group if n)
            found |= boundaries(value, (0,))
    elif isinstance(node, list):
        for item in node:
            found |= boundaries(item, (0,))
    return {n + d for n in found for d in spread if n + d >= 0}


LENGTHS = sorted(boundaries(SCHEMA) | {0, 1, 2, 5})
NUMBER_LIMITS = sorted({v for sub in variants(VALUE_SCHEMA) for k, v in sub.items() if k in ("minimum", "maximum")})


@functools.cache  # built once: building strategies per draw costs more than drawing
def sized_text(chars, pattern: str | None = None, lengths: tuple[int, ...] = tuple(LENGTHS)) -> st.SearchStrategy[str]:
    """A string of one of the boundary lengths: a short motif (matching the pattern if any) repeated."""
    motifs = (st.text(chars, min_size=1, max_size=3) if pattern is None
              else st.from_regex(pattern, fullmatch=True, alphabet=chars).filter(bool))
    return st.builds(functools.partial(repeat, pattern), st.sampled_from(lengths), motifs)


def repeat(pattern: str | None, n: int, motif: str) -> str:
    text = (motif * n)[:n]
    if pattern and not re.fullmatch(pattern, text) and text and re.fullmatch(pattern, text[:-1] + motif[0]):
        return text[:-1] + motif[0]  # a cut that broke the pattern ("ab-ab-" at 6): same length, mended
    return text


# ---- occurredAt -------------------------------------------------------------------------------------

EDGE_TIMES = ["2000-01-01T00:00:00Z", "2000-01-01T00:00:00.000000000Z", "1999-12-31T23:59:59.999999999Z",
              "2000-01-01T00:00:00+00:01", "2000-01-01T00:59:00-01:00", "1999-12-31T23:00:00-01:00",
              "0001-01-01T00:00:00+00:01", "0001-01-01T00:00:00-23:59", "9999-12-31T23:59:59+23:59",
              "9999-12-31T23:59:59-23:59", "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2026-04-31T00:00:00Z",
              "2026-01-05T24:00:00Z", "2026-01-05T23:60:00Z", "2026-01-05T23:59:60Z", "2026-13-05T10:15:30Z",
              "2026-00-05T10:15:30Z", "2026-01-00T10:15:30Z", "2026-01-05T10:15:30+24:00", "2026-01-05T10:15:30-00:00",
              "2026-01-05T10:15:30+05:60", "2026-01-05T10:15:30.Z", "2026-01-05T10:15:30,5Z", "2026-01-05T10:15:30z",
              "2026-01-05 10:15:30Z", "2026-01-05T10:15:30", "2026-01-05T10:15Z", "+2026-01-05T10:15:30Z",
              "20260105T101530Z", "2026-01-05T10:15:30.1234567890Z", "2026-01-05T10:15:30Z\n",
              "\u0662026-01-05T10:15:30Z"]


@st.composite
def occurred_at(draw) -> str:
    """ISO instants in every accepted shape: any offset, 0–9 fractional digits; from before 2000 up to
    now, or well in the future (never within seconds of the 300 s skew limit, where the two calls to
    the clock could fall either side)."""
    future = draw(st.integers(0, 9)) == 9
    moment = draw(st.datetimes(NOW + timedelta(hours=1), datetime(9998, 12, 31)) if future
                  else st.datetimes(datetime(1999, 12, 30), NOW - timedelta(minutes=1)))
    minutes = draw(st.sampled_from([0, 1, -1, 23 * 60 + 59, -(23 * 60 + 59)]) | st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    digits = draw(st.integers(0, 9))
    text = (moment + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    sign = "+" if minutes >= 0 else "-"
    zone = "Z" if not minutes and draw(st.booleans()) else f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return text + zone


# ---- metadata ---------------------------------------------------------------------------------------

NEAR = (-1, 0, 1)  # a limit and its neighbours
BESIDE = (-1, 1)  # only its neighbours: the near misses
AT = (0,)  # the limit itself: still valid
BLANKS = st.text(st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2000\u200b\u2028\u3000\ufeff"), min_size=1, max_size=4)


@functools.cache
def number_values(spread: tuple[int, ...]) -> st.SearchStrategy:
    """AT: in range, its edges included, and what DynamoDB can store. BESIDE: just out of range, just
    too small to store."""
    low, high = int(min(NUMBER_LIMITS)), int(max(NUMBER_LIMITS))
    edges = [n + d for n in (low, high) for d in spread]
    if spread == AT:
        tiny = [1e-128, 1.0000000000000001e-128, 2.2250738585072014e-308]
        return st.one_of(st.integers(low, high), st.floats(low, high).filter(lambda f: f == 0 or abs(f) >= 1e-128),
                         st.sampled_from(edges), st.sampled_from([float(n) for n in edges]),
                         st.sampled_from(tiny + [-t for t in tiny] + [0, 0.0, -0.0, 0.1, 1 / 3]))
    tiny = [9.999999999999999e-129, 1e-130, 5e-324]
    return st.one_of(st.sampled_from(edges), st.sampled_from([float(n) for n in edges]),
                     st.sampled_from([math.nextafter(float(high), math.inf), math.nextafter(float(low), -math.inf)]),
                     st.sampled_from(tiny + [-t for t in tiny]), st.integers(), st.floats(allow_nan=False))


@functools.cache
def metadata_values(chars) -> st.SearchStrategy:  # valid ones
    return st.one_of(st.none(), st.booleans(), number_values(AT), st.text(chars, max_size=8),
                     sized_text(chars, None, tuple(sorted(boundaries(VALUE_SCHEMA, AT) | {1, 2, 5}))))


@functools.cache
def metadata_keys(chars, spread: tuple[int, ...] = AT) -> st.SearchStrategy[str]:
    lengths = boundaries({"pattern": KEY_PATTERN}, spread) | ({1, 2, 5} if spread == AT else set())
    sized = sized_text(chars, KEY_PATTERN, tuple(sorted(lengths)))
    return sized if spread != AT else st.from_regex(KEY_PATTERN, fullmatch=True, alphabet=chars) | sized


def sized_metadata(target: int, fill: str) -> dict:
    """Five text entries whose compact JSON is exactly `target` bytes (non-ASCII counts as \\uXXXX)."""
    per_char = len(json.dumps(fill)) - 2
    data = {f"k{i}": "" for i in range(5)}
    count, rest = divmod(target - len(json.dumps(data, separators=(",", ":")).encode()), per_char)
    for key in data:
        data[key] = fill * min(count, 450)
        count -= min(count, 450)
    data["k4"] += "y" * rest
    assert len(json.dumps(data, separators=(",", ":")).encode()) == target
    return data


@st.composite
def metadata(draw, chars) -> dict:
    """Valid: up to the key limit, or right at the byte limit."""
    if draw(st.integers(0, 3)) == 0:
        return sized_metadata(USAGE_METADATA_MAX_BYTES - draw(st.integers(0, 3)), draw(st.sampled_from(FILLS)))
    count = draw(st.sampled_from([0, 1, 2, 5, METADATA["maxProperties"]]) | st.integers(0, 6))
    # A few drawn keys; the rest numbered (drawing 20 regex keys per example costs more than it finds).
    keys = draw(st.lists(metadata_keys(chars), max_size=min(count, 3), unique=True))
    keys += [key for key in (f"k{i}" for i in range(count + 3)) if key not in keys][:count - len(keys)]
    values = draw(st.lists(metadata_values(chars), min_size=len(keys), max_size=len(keys)))
    return dict(zip(keys, values))


FILLS = ["x", "\u00e9", "\"", "\\"]


@st.composite
def metadata_near_miss(draw) -> dict:
    """One thing wrong: one key too many, a key or a value just beside its limit, a value of another
    type, or JSON a few bytes over the byte limit."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return {f"k{i}": i for i in range(METADATA["maxProperties"] + draw(st.sampled_from([1, 1, 5])))}
    if kind == 1:
        return sized_metadata(USAGE_METADATA_MAX_BYTES + draw(st.integers(1, 3)), draw(st.sampled_from(FILLS)))
    data = draw(metadata(PLAIN_CHARS))
    if kind == 2:
        data[draw(metadata_keys(PLAIN_CHARS, BESIDE) | st.text(MIXED_CHARS, max_size=6))] = 1
    elif kind == 3:
        data[draw(metadata_keys(PLAIN_CHARS))] = draw(number_values(BESIDE))
    else:
        data[draw(metadata_keys(PLAIN_CHARS))] = draw(
            sized_text(PLAIN_CHARS, None, tuple(sorted(boundaries(VALUE_SCHEMA, BESIDE))))
            | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=2), st.integers(), max_size=1)
            | st.text(CHARS, max_size=6))
    return data


BASE_EVENT = {"eventId": "01JDQ6Y3M2S8Q4W6E8R0T2Y4U6", "userId": "user_123", "avatarId": "ava_01jdq6x9k3v5",
              "appId": "pose-generator", "appName": "Pose Generator", "action": "pose.generated",
              "referenceId": "job 8812", "referenceType": "pose_job", "occurredAt": "2026-01-05T10:15:30.120Z"}


# ---- events and bodies ------------------------------------------------------------------------------

@functools.cache
def likely_values(field: str, chars, spread: tuple[int, ...] = AT) -> st.SearchStrategy:
    """Values made to one field's rules in the JSON Schema: AT, lengths at their limits (valid); BESIDE,
    just either side of them (near misses); NEAR, both."""
    if field == "occurredAt":
        return occurred_at() if spread == AT else occurred_at() | st.sampled_from(EDGE_TIMES)
    if field == "metadata":
        return metadata(chars) if spread == AT else metadata_near_miss()
    options = []
    for sub in variants(PROPS[field]):
        if "pattern" in sub and spread != BESIDE:
            options.append(st.from_regex(sub["pattern"], fullmatch=True, alphabet=chars))
        if "pattern" in sub or "maxLength" in sub or "minLength" in sub:  # at this field's own limits
            extra = set() if spread == BESIDE else {1, 2, 5}
            options.append(sized_text(chars, sub.get("pattern"), tuple(sorted(boundaries(sub, spread) | extra))))
    return st.one_of(options)


def bent(text, char: str, at: int, how: str):
    if not isinstance(text, str):
        return text
    return {"insert": text[:at] + char + text[at:], "prefix": char + text, "suffix": text + char,
            "upper": text.upper(), "lower": text.lower(), "shorter": text[:-1], "doubled": text + text}[how]


@functools.cache
def odd_values(field: str) -> st.SearchStrategy:
    """Near misses, the likeliest first: ASCII values just beside a limit; a valid value bent (an
    awkward character in or around it, other case); Unicode beside a limit; blanks; other JSON types
    (numbers where text is due, booleans, null, lists, objects); junk."""
    hows = ["insert", "prefix", "suffix", "upper", "lower", "shorter", "doubled"]
    return st.integers(0, 10).flatmap(lambda kind: [
        likely_values(field, PLAIN_CHARS, BESIDE), likely_values(field, PLAIN_CHARS, BESIDE),
        likely_values(field, PLAIN_CHARS, BESIDE), likely_values(field, PLAIN_CHARS, NEAR),
        st.builds(bent, likely_values(field, PLAIN_CHARS), st.sampled_from(AWKWARD + string.punctuation),
                  st.integers(0, 140), st.sampled_from(hows)),
        st.builds(bent, likely_values(field, MIXED_CHARS), st.sampled_from(AWKWARD), st.integers(0, 140), st.sampled_from(hows)),
        likely_values(field, CHARS, NEAR),
        BLANKS | st.builds(lambda b, t: b + t if isinstance(t, str) else b, BLANKS, likely_values(field, PLAIN_CHARS)),
        st.sampled_from(EDGE_TIMES) if field == "occurredAt" else st.none() | st.booleans() | number_values(BESIDE),
        st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.text(CHARS, max_size=12),
    ][kind])


# Number literals that json.dumps never writes but a sender may: each parser reads the text itself.
RAW_NUMBERS = ["1E400", "-1e400", "1e-400", "-1e-400", "-0", "-0.0", "0e0", "1.0e2", "1E15", "1000000000000000.0000001",
               "999999999999999.99999999", "1.0000000000000000000001e-128", "0.99999999999999999999e-128",
               "0.1000000000000000055511151231257827", "1" + "0" * 15, "1" + "0" * 400, "1" + "0" * 5000,
               "12345678901234567890123456789", "NaN", "Infinity", "-Infinity", "01", "1.", ".5", "+1", "0x10"]


@functools.cache
def likely_events(chars) -> st.SearchStrategy[dict]:  # every field valid
    return st.fixed_dictionaries({f: likely_values(f, chars) for f in REQUIRED},
                                 optional={f: st.none() | likely_values(f, chars) for f in PROPS if f not in REQUIRED})


@st.composite
def near_misses(draw, field: str) -> str:
    """A valid event with one field (or an unknown one) replaced by a near miss, or dropped."""
    event = draw(likely_events(draw(st.sampled_from([PLAIN_CHARS, PLAIN_CHARS, MIXED_CHARS]))))
    if field not in PROPS:
        event[field] = draw(st.text(max_size=3))
    elif draw(st.integers(0, 9)) == 0:
        event.pop(field, None)
    else:
        event[field] = draw(odd_values(field))
    return json.dumps(event, ensure_ascii=draw(st.booleans()))


@st.composite
def odd_bodies(draw):
    """A valid event written in odd ways: number literals json.dumps never writes, duplicate keys, a BOM,
    padding, trailing text, deep nesting, another top-level type, bytes that are not UTF-8."""
    event = draw(likely_events(draw(st.sampled_from([PLAIN_CHARS, MIXED_CHARS]))))
    raw = None
    if draw(st.booleans()):
        raw = draw(st.sampled_from(RAW_NUMBERS))
        where = draw(st.sampled_from(["metadata", "metadata", *REQUIRED]))
        if where == "metadata":
            event["metadata"] = {**(event.get("metadata") or {}), "n": "@@RAW@@"}
        else:
            event[where] = "@@RAW@@"
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    if raw is not None:
        text = text.replace('"@@RAW@@"', raw)
    wrapping = draw(st.sampled_from(["", "bom", "space", "trailing", "duplicate", "array", "scalar", "bytes", "latin1",
                                     "bad-utf8", "nested-deep"]))
    if wrapping == "bom":
        text = "\ufeff" + text
    elif wrapping == "space":
        text = " \t\r\n" + text + "\n "
    elif wrapping == "trailing":
        text += draw(st.sampled_from([" x", "}", ",", "\x00", "//"]))
    elif wrapping == "duplicate":
        field = draw(st.sampled_from(REQUIRED))
        text = "{" + json.dumps(field) + ": " + json.dumps(draw(likely_values(field, PLAIN_CHARS))) + ", " + text[1:]
    elif wrapping == "array":
        text = "[" + text + "]"
    elif wrapping == "scalar":
        text = draw(st.sampled_from(["null", '"text"', "1", "true", "", "not json", "{" * 5000]))
    elif wrapping == "nested-deep":
        text = text[:-1] + ', "extra": ' + "[" * 3000 + "]" * 3000 + "}"
    if wrapping == "bytes":
        return text.encode("utf-8", "surrogatepass")
    if wrapping == "latin1":
        return text.encode("latin-1", "replace")
    if wrapping == "bad-utf8":
        return text.encode("utf-8", "surrogatepass").replace(b"a", b"\xc3", 1)
    return text


def model_answer(body):
    """What the consumer falls back to (chalicelib.usage.service.parse_event)."""
    try:
        return UsageEvent.model_validate_json(body).model_dump()
    except pydantic.ValidationError:
        return "invalid"


def typed(value):
    """Values with their types, so that True == 1 == 1.0 and 0.0 == -0.0 do not hide a difference."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return type(value).__name__, repr(value) if isinstance(value, float) else value


def assert_agree(body) -> None:
    plain = read_plain(body)
    if plain is not None:
        answer = model_answer(body)
        assert answer != "invalid", "the plain reader took an event the model refuses"
        assert typed(vars(plain)) == typed(answer)


@pytest.mark.parametrize("field", [*PROPS, "extra"])
@PER_FIELD
@given(data=st.data())
def test_whenever_the_plain_reader_answers_the_model_reads_the_same(field, data):
    assert_agree(data.draw(near_misses(field)))


@SETTINGS
@given(odd_bodies())
def test_however_the_body_is_written_the_two_agree(body):
    assert_agree(body)


@SETTINGS
@given(likely_events(PLAIN_CHARS))
def test_a_plain_event_the_model_accepts_skips_pydantic(event):
    body = json.dumps(event)
    answer = model_answer(body)
    if answer != "invalid":
        plain = read_plain(body)
        assert plain is not None, "a plainly valid event was left to pydantic"
        assert typed(vars(plain)) == typed(answer)


@pytest.mark.parametrize("field", [f for f in PROPS if f not in ("occurredAt", "metadata")] + ["metadata key"])
def test_every_character_in_every_text_field(field):
    """Exhaustive where sampling is thin: each ASCII character, and each awkward one, alone and at the
    start, middle and end of a valid value (character classes are where a copied regex drifts)."""
    base = {**json.loads(json.dumps(BASE_EVENT)), "metadata": {"key": 1}}
    for char in [chr(c) for c in range(128)] + list(AWKWARD):
        for at in ("alone", 0, 2, None):
            event = json.loads(json.dumps(base))
            value = "key" if field == "metadata key" else event.get(field, "ab")
            value = (char * 3 if at == "alone" else value + char if at is None else value[:at] + char + value[at:])
            if field == "metadata key":
                event["metadata"] = {value: 1}
            else:
                event[field] = value
            assert_agree(json.dumps(event))
            assert_agree(json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def test_the_reader_knows_the_models_fields():
    from chalicelib.usage import plain as usage_plain

    assert set(usage_plain.REQUIRED) == set(REQUIRED)
    assert set(usage_plain.REQUIRED + usage_plain.OPTIONAL) == set(UsageEvent.model_fields)


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_valid_example_of_the_contract_is_read_without_pydantic(name):
    """Cost, not equivalence: the contract's own examples (a Unicode app name among them) take the fast path."""
    assert read_plain(json.dumps(VALID[name])) is not None


def edge_events():
    """Every limit in the JSON Schema, at it and either side, one field at a time in a valid event:
    deterministic, so that no limit depends on sampling reaching it."""
    base = {**BASE_EVENT, "metadata": {"key": 1}}
    for field, prop in PROPS.items():
        for sub in variants(prop):
            if "pattern" in sub or "maxLength" in sub:
                for n in sorted(boundaries(sub, NEAR)):
                    yield f"{field} length {n}", {**base, field: repeat(sub.get("pattern"), n, base[field])}
    limit = METADATA["maxProperties"]
    for count in (limit - 1, limit, limit + 1):
        yield f"{count} metadata keys", {**base, "metadata": {f"k{i}": i for i in range(count)}}
    for n in sorted(boundaries({"pattern": KEY_PATTERN}, NEAR)):
        yield f"metadata key length {n}", {**base, "metadata": {repeat(KEY_PATTERN, n, "key_1.x-"): 1}}
    for n in sorted(boundaries(VALUE_SCHEMA, NEAR)):
        yield f"metadata text length {n}", {**base, "metadata": {"k": "v" * n}}
    low, high = int(min(NUMBER_LIMITS)), int(max(NUMBER_LIMITS))
    numbers = [n + d for n in (low, high) for d in NEAR] + [float(n + d) for n in (low, high) for d in NEAR]
    numbers += [math.nextafter(float(high), math.inf), math.nextafter(float(low), -math.inf), 1e-128, -1e-128,
                9.999999999999999e-129, 1e-130, 5e-324, 0.0, -0.0, 0, True, False, None, [], [1], {}, {"a": 1}]
    for number in numbers:
        yield f"metadata value {number!r}", {**base, "metadata": {"k": number}}
    for fill in FILLS:
        for size in range(USAGE_METADATA_MAX_BYTES - 2, USAGE_METADATA_MAX_BYTES + 3):
            yield f"metadata of {size} bytes ({fill!r})", {**base, "metadata": sized_metadata(size, fill)}


EDGES = dict(edge_events())


@pytest.mark.parametrize("name", sorted(EDGES))
def test_at_and_beside_every_limit(name):
    body = json.dumps(EDGES[name])
    assert_agree(body)
    if model_answer(body) != "invalid" and body.isascii():
        assert read_plain(body) is not None, "a plainly valid event was left to pydantic"
