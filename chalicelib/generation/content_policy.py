"""The content policy on generation requests (docs/content-policy.md), checked before anything is queued.

    enforce(fields, language="en") -> None      raises ValidationError(code="prompt_rejected")
    check(fields) -> Violation | None
    language_of(accept_language) -> "en" | "id"

The rules are data (chalicelib/generation/data/content-policy.v2.json, packaged with the code, English, Bahasa
Indonesia and Malay); this module normalises text, matches it and words the refusal. Pure: no I/O
besides reading the rules file and the Unicode data once, on first use. The module is imported lazily
(never at the API's cold start); the Unicode libraries (`regex`, `confusable_homoglyphs`) are imported
in `load()`, not at import.

Normalisation, so respellings don't pass (`normalise`, `readings`):
  - Unicode NFKC, case folding, every default-ignorable code point removed (by the Unicode property
    Default_Ignorable_Code_Point, read through `regex`), accents removed;
  - decimal digits of any script read as ASCII digits (by their Unicode digit value);
  - a confusables skeleton (Unicode TS #39 confusables.txt, from `confusable_homoglyphs`) maps
    look-alike letters of other scripts to Latin;
  - several readings of the words: plain (digits stay digits: ages, "1488"), leetspeak decoded
    (two ways for the ambiguous 1 ! |), separators inside a word removed ("nak-ed", "n.u.d.e",
    "14/88"), letters spelled out joined ("b u g i l"), words split by a space joined again when the
    pieces are not themselves common words ("na ked", not "pen is"), stretched letters reduced.
Terms match whole words (phrases: consecutive words), never substrings, which keeps "Sussex",
"analyst", "Scunthorpe", "seksama" (carefully) and "cumi-cumi" (squid) allowed.
"""
from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

POLICY_FILE = Path(__file__).parent / "data" / "content-policy.v2.json"
LANGUAGES = ("en", "id")

# Fields of a generation request that carry the user's words (lists: every item is checked).
TEXT_FIELDS = ("prompt", "negativePrompt", "name", "description", "personaName", "personaBackground", "gender",
               "ageRange", "ethnicity", "bodyType", "hairStyle", "hairColor", "eyeColor", "skinTone", "style")
LIST_FIELDS = ("personaPersonality", "styles")

LEET = {"0": "o", "1": "i", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
        "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "£": "l", "(": "c", "<": "c"}
LEET_ALT = {**LEET, "1": "l", "!": "l", "|": "i"}
SWASTIKA = "\u534d"  # 卍: every swastika sign is read as this one token
_PLAIN = re.compile(rf"[a-z]+|[0-9]+|{SWASTIKA}")
_ALNUM = re.compile(rf"[a-z0-9]+|{SWASTIKA}")
_LETTERS = re.compile(rf"[a-z]+|{SWASTIKA}")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_LOOKALIKE_NUMBER = re.compile(r"[0-9oil]{1,2}")

Phrase = tuple[str, ...]
Words = tuple[str, ...]


@dataclass(frozen=True)
class Violation:
    rule: str        # the rule's id, e.g. "sexual_content"
    title: str       # its name in English, e.g. "Sexual content and nudity"
    field: str       # the request field that broke it
    version: str     # the policy version


@dataclass(frozen=True)
class _Rule:
    id: str
    title: dict
    reason: dict
    terms: frozenset


@dataclass(frozen=True)
class Policy:
    version: str
    rules: tuple[_Rule, ...]
    allow: tuple[Phrase, ...]
    suggestive: frozenset
    minor_terms: frozenset
    minor_attributes: dict
    age_below: int
    age_after: tuple[Phrase, ...]
    age_before: tuple[Phrase, ...]
    age_before_weak: tuple[Phrase, ...]
    measure_words: frozenset
    not_age_before: frozenset
    not_age_after: frozenset
    numbers: dict
    teens: frozenset
    stopwords: frozenset
    single_terms: tuple          # one-word terms of every list, sorted: what a starred word may be
    messages: dict
    field_labels: dict
    index: dict                  # phrase → labels (rule ids, "suggestive", "minor", "swastika", …)
    longest: int                 # words in the longest phrase
    longest_word: int            # letters in the longest one-word phrase
    refusing_labels: frozenset   # rule ids, "suggestive" and "swastika": labels that can refuse
    allow_by_first: dict         # first word → allowed phrases starting with it (longest first)
    ignorable: object            # compiled regex of Default_Ignorable_Code_Point
    skeleton: dict               # str.translate table: look-alikes → Latin, swastika signs → 卍

    def rule(self, rule_id: str) -> _Rule:
        return next(r for r in self.rules if r.id == rule_id)


# ---- Unicode data (libraries, loaded with the policy) ------------------------------------------

def _unicode_tables() -> tuple[object, dict]:
    """Default-ignorable code points (a compiled `regex` on the Unicode property) and the translate
    table of the skeleton: TS #39 confusables with a Latin or digit prototype. Swastika signs (卐, ࿕,
    ࿖ …, confusable with 卍) become 卍."""
    import importlib.resources

    import regex

    ignorable = regex.compile(r"\p{Default_Ignorable_Code_Point}+")
    data = json.loads((importlib.resources.files("confusable_homoglyphs") / "confusables.json")
                      .read_text(encoding="utf-8"))
    table: dict[int, str] = {}
    swastikas = {"\u534d", "\u5350"}
    for sign in list(swastikas):
        swastikas.update(e["c"] for e in data.get(sign, ()))
    for char, entries in data.items():
        if len(char) != 1 or char.isascii():
            continue
        if char in swastikas:
            table[ord(char)] = SWASTIKA
            continue
        targets = []
        for entry in entries:
            target = "".join(c for c in unicodedata.normalize("NFD", entry["c"]) if not unicodedata.combining(c))
            if target and target.isascii() and target.isalnum():
                targets.append(target.casefold())
        if targets:  # the most common Latin reading; ties alphabetically (stable)
            table[ord(char)] = max(sorted(set(targets)), key=targets.count)
    for sign in swastikas:
        table[ord(sign)] = SWASTIKA
    return ignorable, table


# ---- loading -------------------------------------------------------------------------------

def _phrase(term: str) -> Phrase:
    return tuple(_PLAIN.findall(term.casefold())) if term != SWASTIKA else (SWASTIKA,)


def _phrases(terms) -> frozenset:
    return frozenset(p for p in (_phrase(t) for t in terms) if p)


def _all_languages(by_language) -> list[str]:
    if isinstance(by_language, list):
        return by_language
    return [term for terms in (by_language or {}).values() for term in terms]


@functools.cache
def load(path: str = str(POLICY_FILE)) -> Policy:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    ignorable, skeleton = _unicode_tables()
    rules = tuple(_Rule(r["id"], r["title"], r["reason"], _phrases(_all_languages(r.get("terms"))))
                  for r in data["rules"])
    minors = data["minorContext"]
    hate = next((r.get("inContext") for r in data["rules"] if r.get("inContext")), None) or {}
    suggestive = _phrases(_all_languages(data.get("suggestive")))
    everything = [*suggestive, *(p for r in rules for p in r.terms), *_phrases(hate.get("terms", []))]
    numbers = {}
    for table in minors.get("numberWords", {}).values():
        numbers.update(table)
    minor_terms = _phrases(_all_languages(minors.get("terms")))
    labelled = [*((r.id, r.terms) for r in rules), ("suggestive", suggestive), ("minor", minor_terms),
                ("swastika", _phrases(hate.get("terms", []))),
                ("swastika_refuse", _phrases(hate.get("refuseWith", []))),
                ("swastika_allow", _phrases(hate.get("allowWith", [])))]
    index: dict[Phrase, set[str]] = {}
    for label, phrases in labelled:
        for phrase in phrases:
            index.setdefault(phrase, set()).add(label)
    allow = tuple(sorted(_phrases(_all_languages(data.get("allow"))), key=len, reverse=True))
    allow_by_first: dict[str, list[Phrase]] = {}
    for phrase in allow:
        allow_by_first.setdefault(phrase[0], []).append(phrase)
    return Policy(
        index={k: frozenset(v) for k, v in index.items()}, longest=max(map(len, index)),
        longest_word=max(len(p[0]) for p in index if len(p) == 1),
        refusing_labels=frozenset([*(r.id for r in rules), "suggestive", "swastika"]),
        allow_by_first={k: tuple(v) for k, v in allow_by_first.items()},
        version=data["version"], rules=rules,
        allow=allow, suggestive=suggestive, minor_terms=minor_terms,
        minor_attributes={k: _phrases(v) for k, v in (minors.get("ageAttribute") or {}).items()},
        age_below=int(minors.get("ageBelow", 18)),
        age_after=tuple(tuple(p) for p in minors.get("ageAfter", [])),
        age_before=tuple(tuple(p) for p in minors.get("ageBefore", [])),
        age_before_weak=tuple(tuple(p) for p in minors.get("ageBeforeWeak", [])),
        measure_words=frozenset(minors.get("measureWords", [])),
        not_age_before=frozenset(minors.get("notAgeBefore", [])),
        not_age_after=frozenset(minors.get("notAgeAfter", [])),
        numbers=numbers, teens=frozenset(minors.get("teens", [])),
        stopwords=frozenset(data.get("splitWordStopwords", [])),
        single_terms=tuple(sorted({p[0] for p in everything if len(p) == 1})),
        messages=data["messages"], field_labels=data.get("fieldLabels", {}),
        ignorable=ignorable, skeleton=skeleton)


# ---- normalisation -------------------------------------------------------------------------

def normalise(text: str, policy: Policy | None = None, capital_i_as_l: bool = False) -> str:
    """Default-ignorables removed, NFKC, case folded, accents removed, decimal digits of every script as
    ASCII digits, confusables skeleton (Latin). The skeleton is applied before NFKC and case folding
    too: they would turn look-alikes into letters that are not (lunate sigma ϲ → σ, Cyrillic К → к).
    With `capital_i_as_l`, a capital I is read as the l it looks like (TS #39 reads both as l)."""
    policy = policy or load()
    if not text.isascii():
        text = policy.ignorable.sub("", text).translate(policy.skeleton)
    text = unicodedata.normalize("NFKC", text)
    if capital_i_as_l:
        text = text.replace("I", "l")
    text = text.casefold()
    if text.isascii():
        return text
    text = policy.ignorable.sub("", text)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    # decimal digits of any script are digits (by Unicode value), then look-alikes
    text = "".join(str(unicodedata.decimal(c)) if not c.isascii() and unicodedata.decimal(c, None) is not None
                   else c for c in text).translate(policy.skeleton)
    return unicodedata.normalize("NFKC", text).casefold()


def _join_spelled(tokens: list[str], runs: list[str] | None = None) -> list[str]:
    """'b u g i l' → 'bugil': runs of three or more single characters are one word spelled out (each
    run is also added to `runs`, where listed words are looked for inside it: 'a n u d e')."""
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1 and token != SWASTIKA:
            run.append(token)
            continue
        if len(run) >= 3:
            out.append("".join(run))
            if runs is not None:
                runs.append(out[-1])
        else:
            out.extend(run)
        run = []
        if token:
            out.append(token)
    return out


def _inside_runs(runs: list[str], policy: Policy) -> set[str]:
    """Refused or suggestive single words of 4+ letters found anywhere inside spelled-out runs
    ('a n u d e', 'i a m n a k e d'). Context words (minors, religious settings) are not read there:
    'a n a k e d' is not 'anak' (child)."""
    found: set[str] = set()
    for run in runs:
        for start in range(len(run)):
            for end in range(start + 4, min(len(run), start + policy.longest_word) + 1):
                found.update(policy.index.get((run[start:end],), ()))
    return found & policy.refusing_labels


def _squeeze(token: str, keep: int) -> str:
    return re.sub(r"(.)\1{%d,}" % keep, r"\1" * keep, token)


def _tokenised(text: str, pattern: re.Pattern, joined: bool) -> list[str]:
    """Words of each whitespace-separated chunk; with `joined`, a chunk's pieces ('nak-ed', '14/88',
    'n.u.d.e') are one word."""
    out: list[str] = []
    for chunk in text.split():
        pieces = pattern.findall(chunk)
        if joined and len(pieces) > 1 and SWASTIKA not in pieces:
            out.append("".join(pieces))
        else:
            out.extend(pieces)
    return out


def readings(text: str, policy: Policy | None = None, runs: list[str] | None = None) -> list[Words]:
    """The ways the text can be read, each as a tuple of normalised words: plain, leetspeak decoded
    (two ways), with separators inside words removed or not, stretched letters reduced (to two, to one),
    camelCase split, a capital I read as l, asterisks read as the listed word they fit."""
    policy = policy or load()
    base = normalise(text, policy)
    starred = _wildcards(base, policy)
    camel = _CAMEL.sub(" ", text)  # "nudeWoman" → "nude Woman"
    capital_i = normalise(text, policy, capital_i_as_l=True) if "I" in unicodedata.normalize("NFKC", text) else base
    variants = [(base, _PLAIN), *([(starred, _PLAIN)] if starred else []),
                *([(normalise(camel, policy), _PLAIN)] if camel != text else []),
                *([(capital_i, _PLAIN)] if capital_i != base else []),
                ("".join(LEET.get(c, c) for c in base), _LETTERS), ("".join(LEET_ALT.get(c, c) for c in base), _LETTERS)]
    out: list[Words] = []
    for variant, pattern in variants:
        for joined in (False, True):
            tokens = _join_spelled(_tokenised(variant, pattern, joined), runs)
            out += [tuple(tokens), tuple(_squeeze(t, 2) for t in tokens), tuple(_squeeze(t, 1) for t in tokens)]
    return list(dict.fromkeys(out))


def _without_allowed(words: Words, policy: Policy) -> Words:
    """Allowed phrases are cut out (a gap is left, so words either side never join into a phrase)."""
    out = list(words)
    for i, word in enumerate(words):
        for phrase in policy.allow_by_first.get(word, ()):
            if tuple(out[i:i + len(phrase)]) == phrase:
                out[i:i + len(phrase)] = [""] * len(phrase)
                break
    return tuple(out)


def _labels(words: Words, policy: Policy) -> set[str]:
    """Every label of the phrases the words contain: whole words (an English plural too), consecutive
    words, and a word split by spaces ("na ked", "te lan jang") unless its pieces are common words."""
    found: set[str] = set()
    index, count = policy.index, len(words)
    for i, word in enumerate(words):
        if not word:
            continue
        found.update(index.get((word,), ()))
        if len(word) > 3 and word.endswith("s"):
            found.update(index.get((word[:-1],), ()))
        for n in range(2, min(policy.longest, 5) + 1):
            if i + n > count:
                break
            window = words[i:i + n]
            found.update(index.get(window, ()))
            if n <= 4 and all(window):
                joined = "".join(window)
                if len(joined) >= 4 and (joined,) in index and not _common(window, policy):
                    found.update(index[(joined,)])
    return found


def _find(words: Words, phrases: frozenset, policy: Policy) -> bool:
    for i, word in enumerate(words):
        if not word:
            continue
        if (word,) in phrases or (len(word) > 3 and word.endswith("s") and (word[:-1],) in phrases):
            return True
        for n in range(2, 6):
            if i + n > len(words):
                break
            window = words[i:i + n]
            if window in phrases:
                return True
            # a word split by spaces ("na ked", "te lan jang"), unless a piece is itself a common word
            joined = "".join(window)
            if n <= 4 and len(joined) >= 4 and (joined,) in phrases and all(window) and not _common(window, policy):
                return True
    return False


def _common(pieces: Words, policy: Policy) -> bool:
    """Pieces that are plainly words of their own: all common words, or one common word of 3+ letters."""
    common = [piece in policy.stopwords for piece in pieces]
    return all(common) or any(c and len(p) >= 3 for c, p in zip(common, pieces))


def _wildcards(text: str, policy: Policy) -> str | None:
    """'p*rn' → 'porn': a word with asterisks standing for letters, read as the listed word it fits."""
    if "*" not in text:
        return None
    out = []
    for chunk in text.split():
        core = chunk.strip(".,;:!?\"'()")
        if "*" in core and re.fullmatch(r"[a-z*]+", core) and core.strip("*"):
            pattern = re.compile(core.replace("*", "[a-z]"))
            core = next((t for t in policy.single_terms if pattern.fullmatch(t)), core)
        out.append(core)
    return " ".join(out)


# ---- minors: words, ages, attributes -------------------------------------------------------

def _number_at(words: Words, i: int, policy: Policy) -> tuple[int | None, int]:
    """The number starting at words[i] and how many words it takes: digits (and their look-alikes,
    'l5'), English or Indonesian/Malay number words ('sixteen', 'enam belas', 'sebelas')."""
    word = words[i]
    if word.isdigit():
        return int(word), 1
    if _LOOKALIKE_NUMBER.fullmatch(word) and any(c.isdigit() for c in word):
        return int(word.replace("o", "0").replace("i", "1").replace("l", "1")), 1
    if word in policy.numbers:
        value = policy.numbers[word]
        if i + 1 < len(words) and words[i + 1] in policy.teens:
            return 10 + value, 2
        return value, 1
    return None, 0


def _follows(words: Words, i: int, phrase: Phrase) -> bool:
    return tuple(words[i:i + len(phrase)]) == phrase


def _is_minor_age(words: Words, policy: Policy) -> bool:
    """'16 year old', 'sixteen-year-old', '15 y.o.', 'aged 15', 'umur 15', 'enam belas tahun' … under 18
    (the rules: minorContext.notes in the policy file)."""
    for i in range(len(words)):
        value, size = _number_at(words, i, policy)
        if value is None or value >= policy.age_below:
            continue
        end = i + size
        before = words[i - 1] if i else ""
        for unit in policy.age_after:
            if _follows(words, end, unit) and before not in policy.not_age_before:
                if (words[end + len(unit)] if end + len(unit) < len(words) else "") not in policy.not_age_after:
                    return True
        if any(i >= len(p) and tuple(words[i - len(p):i]) == p for p in policy.age_before):
            return True
        after = words[end] if end < len(words) else ""
        if after not in policy.measure_words and any(
                i >= len(p) and tuple(words[i - len(p):i]) == p for p in policy.age_before_weak):
            return True
    return False


def _minor_context(fields: dict, read: list, policy: Policy) -> bool:
    """Does the request depict someone under age: by its words, its ageRange, or its personaAge?"""
    age = fields.get("personaAge")
    if isinstance(age, int) and not isinstance(age, bool) and age < policy.age_below:
        return True
    for attribute, phrases in policy.minor_attributes.items():
        value = fields.get(attribute)
        if isinstance(value, str):
            words = tuple(_PLAIN.findall(normalise(value, policy)))
            numbers = [int(w) for w in words if w.isdigit()]
            if _find(words, phrases, policy) or (numbers and min(numbers) < policy.age_below):
                return True
    if any("minor" in labels for _, labels in read):
        return True
    for _, text in _texts(fields):  # ages: digits read as digits (and look-alikes of digits: "l5")
        base = normalise(text, policy)
        if (_is_minor_age(tuple(_PLAIN.findall(base)), policy)
                or _is_minor_age(tuple(_ALNUM.findall(base)), policy)):
            return True
    return False


# ---- the check -----------------------------------------------------------------------------

def _texts(fields: dict) -> list[tuple[str, str]]:
    texts = [(name, fields[name]) for name in TEXT_FIELDS if isinstance(fields.get(name), str)]
    for name in LIST_FIELDS:
        texts += [(name, t) for t in fields.get(name) or [] if isinstance(t, str)]
    return texts


def _swastika_refused(read: list, policy: Policy) -> str | None:
    """The field naming a swastika (word or sign) that is not plainly religious: Nazi context anywhere
    in the request refuses it; a Hindu, Buddhist or Jain setting (and no Nazi context) allows it."""
    named = next((name for name, labels in read if "swastika" in labels), None)
    if named is None or any("swastika_refuse" in labels for _, labels in read):
        return named
    if any("swastika_allow" in labels for _, labels in read):
        return None
    return named


def check(fields: dict, policy: Policy | None = None) -> Violation | None:
    """The first rule the request breaks (rules in the file's order), or None.

    minors: an always-refused term, or a sexual or suggestive term anywhere in a request that depicts
    someone under 18 (words, ages, ageRange, personaAge) — the field named is the one with that term."""
    policy = policy or load()
    fields = fields or {}
    read = []
    for name, text in _texts(fields):
        labels: set[str] = set()
        runs: list[str] = []
        for words in readings(text, policy, runs):
            labels |= _labels(_without_allowed(words, policy), policy)
        labels |= _inside_runs(list(dict.fromkeys(runs)), policy)
        read.append((name, labels))
    minor = _minor_context(fields, read, policy)
    for rule in policy.rules:
        for name, labels in read:
            if rule.id in labels or (rule.id == "minors" and minor and labels & {"sexual_content", "suggestive"}):
                return Violation(rule.id, rule.title["en"], name, policy.version)
        if rule.id == "hate_symbols":
            field = _swastika_refused(read, policy)
            if field is not None:
                return Violation(rule.id, rule.title["en"], field, policy.version)
    return None


def check_text(text: str, policy: Policy | None = None) -> Violation | None:
    return check({"prompt": text}, policy)


# ---- the refusal, in the person's language -------------------------------------------------

def language_of(accept_language: str | None) -> str:
    """'id' when the request prefers Indonesian or Malay (id, id-ID, in — the old code —, ms, ms-MY)
    over English, else 'en'. Reads the Accept-Language list with its q-values; other languages are
    skipped (the policy speaks these two)."""
    best: tuple[float, int, str] | None = None
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        language = {"en": "en", "id": "id", "in": "id", "ms": "id"}.get(primary)
        if language is None:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or (quality, -position) > (best[0], best[1])):
            best = (quality, -position, language)
    return best[2] if best else "en"


def message(violation: Violation, language: str = "en", policy: Policy | None = None) -> str:
    """One plain sentence for the person: what is not allowed and where it was found."""
    policy = policy or load()
    language = language if language in LANGUAGES else "en"
    rule = policy.rule(violation.rule)
    labels = policy.field_labels.get(language, {})
    return policy.messages[language].format(reason=rule.reason[language],
                                            field=labels.get(violation.field, violation.field))


def enforce(fields: dict, language: str = "en") -> None:
    """Raise ValidationError `prompt_rejected` (HTTP 400) if the request breaks the policy."""
    from chalicelib.errors import ValidationError

    policy = load()
    violation = check(fields, policy)
    if violation is None:
        return
    language = language if language in LANGUAGES else "en"
    rule = policy.rule(violation.rule)
    raise ValidationError(message(violation, language, policy), code="prompt_rejected", details={
        "rule": violation.rule, "ruleTitle": rule.title[language], "reason": rule.reason[language],
        "field": violation.field, "policy": violation.version, "language": language})
