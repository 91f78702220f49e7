"""One spelling per attribute value (issue 28): the presets, the page's filters and badges and the API
share it. Values once stored under another spelling (the first presets said `sports` and
`young_adult` where the page says `sporty` and `young-adult`) are still accepted and read back in the
current spelling; filters match both, since old items keep their old spelling in the table."""
from __future__ import annotations

# attribute → {old spelling: current spelling}
ALIASES: dict[str, dict[str, str]] = {
    "style": {"sports": "sporty", "sport": "sporty"},
    "ageRange": {"young_adult": "young-adult", "young adult": "young-adult",
                 "middle_aged": "middle-aged", "middle aged": "middle-aged"},
    "gender": {"non_binary": "non-binary", "nonbinary": "non-binary"},
}


def canonical(attribute: str, value: str | None) -> str | None:
    """The current spelling of `value` (unchanged when it has no other)."""
    if value is None:
        return None
    return ALIASES.get(attribute, {}).get(value, value)


def spellings(attribute: str, value: str) -> list[str]:
    """Every stored spelling that means `value`: the current one first, then the old ones."""
    current = canonical(attribute, value)
    return [current, *sorted(old for old, new in ALIASES.get(attribute, {}).items() if new == current)]


# Visual attributes added with attribute suggestions (issue 30): closed sets of values, the same in the
# API's enums (chalicelib.schemas), the list filters and the page (web/core.js). hairColor and eyeColor
# stay free text for the user (presets say "salt and pepper"); suggestions use the values below.
VISUAL_VALUES: dict[str, tuple[str, ...]] = {
    "hairColor": ("black", "brown", "blonde", "red", "grey"),
    "hairLength": ("bald", "short", "medium", "long"),
    "eyeColor": ("brown", "blue", "green", "hazel"),
    "glasses": ("none", "glasses", "sunglasses"),
    "facialHair": ("none", "stubble", "beard", "mustache"),
    "clothingStyle": ("casual", "formal", "business", "sporty", "streetwear"),
    "background": ("plain", "indoor", "nature", "city"),
    "expression": ("smiling", "neutral", "serious", "laughing"),
}
# The attributes of the person that are suggested only when the user asks on that upload.
PERSON_VALUES: dict[str, tuple[str, ...]] = {
    "gender": ("female", "male"),
    "ageRange": ("teen", "young-adult", "adult", "middle-aged", "senior"),
}
