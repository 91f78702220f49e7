"""The page's words (issue 28 B): both catalogues have every key with the same placeholders, every
key the page uses exists, and no English is left in the markup or the modules outside a catalogue."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
MODULES = sorted(p for p in WEB.glob("*.js") if not p.name.startswith("i18n-"))


def catalogue(name: str) -> dict:
    text = (WEB / f"i18n-{name}.js").read_text(encoding="utf-8")
    body = text[text.index("export default {") + len("export default "):text.rindex("}") + 1]
    return json.loads(re.sub(r",\s*}$", "}", body.strip()))


EN, ID = catalogue("en"), catalogue("id")
SOURCE = {p.name: p.read_text(encoding="utf-8") for p in MODULES}


def placeholders(message) -> set[str]:
    texts = message.values() if isinstance(message, dict) else [message]
    return {name for text in texts for name in re.findall(r"\{(\w+)\}", text)}


def test_both_languages_have_the_same_keys():
    assert sorted(set(EN) - set(ID)) == [], "missing in Indonesian"
    assert sorted(set(ID) - set(EN)) == [], "missing in English"


@pytest.mark.parametrize("key", sorted(EN))
def test_a_message_has_the_same_placeholders_and_forms_in_both(key):
    assert placeholders(EN[key]) == placeholders(ID[key]), key
    assert isinstance(EN[key], dict) == isinstance(ID[key], dict), key
    for message in (EN[key], ID[key]):
        if isinstance(message, dict):
            assert "other" in message, key
        else:
            assert message.strip(), key


def test_every_key_the_page_uses_exists():
    used = {key for text in SOURCE.values() for key in re.findall(r"\b(?:t|rich)\(\"([\w.\-]+)\"", text)}
    used |= set(re.findall(r'data-i18n(?:-[\w-]+)?="([\w.\-]+)"', (WEB / "index.html").read_text(encoding="utf-8")))
    assert sorted(used - set(EN)) == []


def _list(source: str, name: str) -> list[str]:
    match = re.search(rf"(?:const|export const) {name} = \[(.*?)\];", source, re.S)
    assert match, name
    return re.findall(r'"([^"]+)"', match.group(1))


def test_keys_built_at_run_time_exist():
    """field.<name>, error.<code> and value.<attribute value> are looked up by name."""
    fields = _list(SOURCE["ui.js"], "FIELDS")
    codes = _list(SOURCE["ui.js"], "CODES")
    attributes = re.search(r"export const ATTRIBUTES = \{(.*?)\n\};", SOURCE["core.js"], re.S).group(1)
    values = {v for line in attributes.splitlines() if ":" in line for v in re.findall(r'"([^"]+)"', line.split(":", 1)[1])}
    missing = [f"field.{f}" for f in fields if f"field.{f}" not in EN] + [f"error.{c}" for c in codes if f"error.{c}" not in EN]
    missing += [f"value.{v}" for v in sorted(values) if f"value.{v}" not in EN]
    assert missing == []


# Text a person reads, written in a module instead of a catalogue: an h() child, or a label-like attribute.
_CHILD = re.compile(r"""\bh\("[\w-]+",\s*(?:\{[^{}]*\}|null),\s*"([^"]*[A-Za-z]{2}[^"]*)"(?=\s*[,)])""")
_ATTR = re.compile(r"""["']?(?:aria-label|placeholder|title|alt)["']?\s*:\s*["`]([^"`]*[A-Za-z]{2}[^"`]*)["`]""")
_TOAST = re.compile(r"""\b(?:toast|showError|say)\(\s*[`"]([^`"]*[A-Za-z]{3}[^`"]*)[`"]""")
# Names that stay as they are in every language (products, standards, commands).
KEEP = {"Standard Webhooks", "make run", "make token USER=alice", "Avatar Creator", "Pose Generator", "Video Generator",
        "Poster Maker", "eyJhbGciOi…"}


@pytest.mark.parametrize("module", sorted(SOURCE))
def test_no_words_are_left_in_a_module(module):
    text = SOURCE[module]
    found = [m for pattern in (_CHILD, _ATTR, _TOAST) for m in pattern.findall(text)]
    left = [s for s in found if s not in KEEP and not s.startswith(("http", "/", "#")) and "${" not in s]
    assert left == [], f"web/{module} has words outside the catalogues: {left}"


def test_no_words_are_left_in_the_markup():
    html = (WEB / "index.html").read_text(encoding="utf-8")
    body = html[html.index("<body>"):]
    texts = re.findall(r"<(\w+)([^>]*)>([^<]*[A-Za-z]{2}[^<]*)<", body)
    left = [text.strip() for _tag, attrs, text in texts if "data-i18n=" not in attrs and text.strip() not in KEEP]
    assert left == []
