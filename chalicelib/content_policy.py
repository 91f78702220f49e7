"""The content policy on prompts (docs/content-policy.md), checked before a generation is queued.

    check(fields) -> Violation | None

The rules are data (chalicelib/data/content-policy.v1.json, packaged with the code); this module only
normalises text and matches it. Pure: no I/O besides reading that file once, standard library only.

Normalisation, so trivial respellings don't pass:
  - NFKC (fullwidth, mathematical and circled letters, ligatures), accents stripped, case folded;
  - look-alike letters of other scripts (Cyrillic "а", Greek "ο" …) mapped to Latin;
  - invisible characters (zero-width, soft hyphen) removed;
  - leetspeak (n4k3d, $exy, pr0n) as a second reading of the text (the plain one keeps numbers: ages);
  - letters spelled out with separators ("n a k e d", "n.u.d.e", "s-e-x") joined again;
  - stretched letters ("naaaaked") reduced.
Terms match whole words (phrases: consecutive words), never substrings, which is what keeps
"Sussex", "analyst", "Scunthorpe" and "cocktail dress" allowed.
"""
from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

POLICY_FILE = Path(__file__).parent / "data" / "content-policy.v1.json"

# Fields of a generation request that carry the user's words.
TEXT_FIELDS = ("prompt", "name", "personaName", "personaBackground", "gender", "ageRange", "ethnicity",
               "bodyType", "hairStyle", "hairColor", "eyeColor", "skinTone", "style")

INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e"
                                   "\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"), None)
# Letters of other scripts that look like Latin ones (Unicode confusables, the common subset).
CONFUSABLES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "и": "u", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l", "ɡ": "g", "ո": "n", "ս": "u",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y", "ω": "w", "μ": "u", "ς": "s", "σ": "o",
    # Latin look-alikes NFKC keeps
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "ɑ": "a", "ʀ": "r", "ɴ": "n",
    "ʏ": "y", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
    "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ᴏ": "o", "ᴘ": "p", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w",
    "ᴢ": "z",
})
LEET = {"0": "o", "1": "i", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
        "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "£": "l", "(": "c", "<": "c"}
LEET_ALT = {**LEET, "1": "l", "!": "l", "|": "i"}
WORD = re.compile(r"[a-z0-9]+")
AGE = re.compile(r"\b(\d{1,2})\s*(?:-\s*)?(?:years?|yrs?|yo|y/o|year-old|years-old)\b")


@dataclass(frozen=True)
class Violation:
    rule: str        # the rule's id, e.g. "sexual_content"
    title: str       # its human name, e.g. "Sexual content and nudity"
    field: str       # the request field that broke it
    version: str     # the policy version


def _base(text: str) -> str:
    """NFKC, no accents, no invisible characters, confusables mapped, lower case."""
    text = unicodedata.normalize("NFKC", text).translate(INVISIBLE)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.casefold().translate(CONFUSABLES)


def _join_spelled(tokens: list[str]) -> list[str]:
    """'n a k e d' → 'naked': runs of three or more single characters are one word spelled out."""
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1:
            run.append(token)
            continue
        if len(run) >= 3:
            out.append("".join(run))
        else:
            out.extend(run)
        run = []
        if token:
            out.append(token)
    return out


def _squeeze(token: str) -> str:
    return re.sub(r"(.)\1{2,}", r"\1\1", token)


def readings(text: str) -> list[tuple[str, ...]]:
    """The ways the text can be read: plain, and leetspeak decoded (two ways for the ambiguous 1 ! |),
    each as a tuple of normalised words (stretched letters reduced to two, and to one)."""
    base = _base(text)
    out = []
    for variant in (base, "".join(LEET.get(c, c) for c in base), "".join(LEET_ALT.get(c, c) for c in base)):
        tokens = _join_spelled(WORD.findall(variant))
        squeezed = [_squeeze(t) for t in tokens]
        out += [tuple(tokens), tuple(squeezed),
                tuple(re.sub(r"(.)\1+", r"\1", t) if t != s else s for t, s in zip(tokens, squeezed))]
    return list(dict.fromkeys(out))


def _phrase(term: str) -> tuple[str, ...]:
    return tuple(WORD.findall(_base(term)))


@dataclass(frozen=True)
class _Rule:
    id: str
    title: str
    terms: frozenset[tuple[str, ...]]
    minor_terms: frozenset[tuple[str, ...]]


@dataclass(frozen=True)
class Policy:
    version: str
    rules: tuple[_Rule, ...]
    allow: tuple[tuple[str, ...], ...]
    minor_terms: frozenset[tuple[str, ...]]
    age_below: int
    minor_attributes: dict


def _phrases(terms) -> frozenset[tuple[str, ...]]:
    return frozenset(p for p in (_phrase(t) for t in terms) if p)


@functools.cache
def load(path: str = str(POLICY_FILE)) -> Policy:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    by_id = {r["id"]: r for r in data["rules"]}
    rules = []
    for rule in data["rules"]:
        with_minors = rule.get("withMinorContext") or {}
        minor_terms = set(with_minors.get("terms", []))
        for other in with_minors.get("rules", []):
            minor_terms.update(by_id[other]["terms"])
        rules.append(_Rule(rule["id"], rule["title"], _phrases(rule.get("terms", [])), _phrases(minor_terms)))
    context = data.get("minorContext") or {}
    return Policy(version=data["version"], rules=tuple(rules),
                  allow=tuple(sorted(_phrases(data.get("allow", [])), key=len, reverse=True)),
                  minor_terms=_phrases(context.get("terms", [])), age_below=int(context.get("ageBelow", 18)),
                  minor_attributes={k: set(v) for k, v in (context.get("attributes") or {}).items()})


def _without_allowed(words: tuple[str, ...], allow: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    """Allowed phrases are cut out (a gap is left, so words either side never join into a phrase)."""
    out = list(words)
    for phrase in allow:
        n = len(phrase)
        for i in range(len(out) - n + 1):
            if tuple(out[i:i + n]) == phrase:
                out[i:i + n] = [""] * n
    return tuple(out)


def _contains(words: tuple[str, ...], phrases: frozenset[tuple[str, ...]]) -> bool:
    for i, word in enumerate(words):
        if not word:
            continue
        if (word,) in phrases or (word.endswith("s") and (word[:-1],) in phrases):
            return True
        for n in range(2, 5):
            if i + n <= len(words) and tuple(words[i:i + n]) in phrases:
                return True
    return False


def _texts(fields: dict) -> list[tuple[str, str]]:
    texts = [(name, fields[name]) for name in TEXT_FIELDS if isinstance(fields.get(name), str)]
    texts += [("personaPersonality", t) for t in fields.get("personaPersonality") or [] if isinstance(t, str)]
    return texts


def check(fields: dict, policy: Policy | None = None) -> Violation | None:
    """The first rule the request's words break (rules in the file's order), or None."""
    policy = policy or load()
    fields = fields or {}
    read = [(name, [_without_allowed(r, policy.allow) for r in readings(text)]) for name, text in _texts(fields)]
    minor = _minor_context(fields, read, policy)
    for rule in policy.rules:
        for name, variants in read:
            if any(_contains(words, rule.terms) for words in variants):
                return Violation(rule.id, rule.title, name, policy.version)
            if minor and rule.minor_terms and any(_contains(words, rule.minor_terms) for words in variants):
                return Violation(rule.id, rule.title, name, policy.version)
    return None


def check_text(text: str, policy: Policy | None = None) -> Violation | None:
    return check({"prompt": text}, policy)


def _minor_context(fields: dict, read: list, policy: Policy) -> bool:
    """Does the request depict someone under age: by its words, its ageRange, or its personaAge?"""
    for attribute, values in policy.minor_attributes.items():
        if str(fields.get(attribute) or "").strip().lower() in values:
            return True
    age = fields.get("personaAge")
    if isinstance(age, int) and not isinstance(age, bool) and age < policy.age_below:
        return True
    if any(_contains(words, policy.minor_terms) for _, variants in read for words in variants):
        return True
    for _, text in _texts(fields):
        for match in AGE.finditer(_base(text)):
            if int(match.group(1)) < policy.age_below:
                return True
    return False
