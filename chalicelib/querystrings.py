"""The cold-start path of query-string parsing: a plainly valid query string (or none at all, the
usual case) is read without pydantic: importing it and building chalicelib.schemas costs 150–270 ms
on a fresh process (measured in the venv) — more than the rest of a GET. Anything this module is not certain pydantic would accept unchanged
returns None, and the pydantic models in chalicelib.schemas decide (and word the 400). The rules here copy
the models'; tests/unit/test_querystrings_match_schema.py checks on generated queries that the two agree."""
from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any, Callable

_LIMIT = re.compile(r"[1-9][0-9]?|100")
_CATEGORY = re.compile(r"[a-z0-9-]{1,40}")
# schemas.LINE_TEXT: no control character, no bidi override or isolate. Explicit code-point ranges,
# so Python's re and pydantic's engine read them alike.
_LINE_TEXT = re.compile(r"[^\x00-\x1F\x7F\u202A-\u202E\u2066-\u2069]*")


def encodable(text: str) -> bool:
    """UTF-8 can carry it (no lone surrogates), as pydantic requires of a str."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(max_length: int) -> Callable[[str], bool]:
    # Already stripped (so pydantic's strip_whitespace changes nothing) and encodable.
    return lambda value: len(value) <= max_length and value == value.strip() and encodable(value)


def _one_of(*allowed: str) -> Callable[[str], bool]:
    # A bound method, so that the tests can compare the words with the model's Literal.
    return frozenset(allowed).__contains__


_CURSOR = _text(2048)
_SHORT_TEXT = _text(64)
_SEARCH_TEXT = _text(100)


def _short(value: str) -> bool:  # schemas.ShortText
    return _SHORT_TEXT(value) and _LINE_TEXT.fullmatch(value) is not None


def _search(value: str) -> bool:  # schemas.AvatarListQuery.q: one line, no control or bidi character
    return _SEARCH_TEXT(value) and _LINE_TEXT.fullmatch(value) is not None


# name → {field: (default, accepts)}; "limit" is the one integer field.
_LIST: dict[str, tuple[Any, Callable[[str], bool]]] = {
    "limit": (20, lambda v: _LIMIT.fullmatch(v) is not None),
    "cursor": (None, lambda v: v.isascii() and _CURSOR(v)),
}
SPECS: dict[str, dict[str, tuple[Any, Callable[[str], bool]]]] = {
    "ListQuery": _LIST,
    "ProjectListQuery": {**_LIST, "shared": ("false", _one_of("true", "false"))},
    "AvatarListQuery": {
        **_LIST,
        "sourceType": (None, _one_of("uploaded", "text_to_image", "preset", "image_to_image")),
        "gender": (None, _short),
        "style": (None, _short),
        "status": (None, _one_of("uploading", "processing", "ready", "rejected")),
        # The visual attributes of issue 30 (schemas: HairLength, Glasses, …).
        "hairLength": (None, _one_of("bald", "short", "medium", "long")),
        "glasses": (None, _one_of("none", "glasses", "sunglasses")),
        "facialHair": (None, _one_of("none", "stubble", "beard", "mustache")),
        "clothingStyle": (None, _one_of("casual", "formal", "business", "sporty", "streetwear")),
        "background": (None, _one_of("plain", "indoor", "nature", "city")),
        "expression": (None, _one_of("smiling", "neutral", "serious", "laughing")),
        "q": (None, _search),
    },
    "CategoryListQuery": {**_LIST, "category": (None, lambda v: _CATEGORY.fullmatch(v) is not None)},
    "GenerationListQuery": {**_LIST, "status": ("all", _one_of("active", "all"))},
}


def parse_plain(name: str, params: dict[str, Any]) -> SimpleNamespace | None:
    """The query's values if every known parameter is plainly valid, else None (let pydantic decide).
    Unknown parameters are ignored, as the models do."""
    spec = SPECS.get(name)
    if spec is None:
        return None
    values = {}
    for field, (default, accepts) in spec.items():
        if field not in params:
            values[field] = default
            continue
        raw = params[field]
        if not isinstance(raw, str) or not accepts(raw):
            return None
        values[field] = int(raw) if field == "limit" else raw
    return SimpleNamespace(**values)
