"""The text-to-image prompt: persona + attributes + the user's words + photographic quality terms.

Pure and bounded: the same fields always give the same prompt, never longer than PROMPT_MAX chars
(FLUX's T5 encoder reads 512 tokens; the LoRA was trained on short photographic captions).
The original service's example, which this reproduces:
  "Sarah, 32 years old, professional personality, female, middle-aged adult (30-50 years old),
   asian ethnicity, wearing professional attire, confident business woman, professional photo
   studio portrait, ultra realistic, …"
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROMPT_MAX = 1200
USER_PROMPT_MAX = 600

QUALITY_TERMS = (
    "professional photo studio portrait", "ultra realistic", "photorealistic", "highly detailed skin texture",
    "natural lighting", "sharp focus", "85mm lens", "8k",
)
NEGATIVE_PROMPT = ", ".join((
    "cartoon", "anime", "illustration", "painting", "drawing", "3d render", "cgi", "video game", "doll",
    "plastic skin", "deformed", "disfigured", "extra limbs", "extra fingers", "mutated hands", "bad anatomy",
    "blurry", "low quality", "watermark", "text", "logo",
))

# The original service's wording for its attribute values; unknown values are used as they are.
AGE_RANGES = {
    "child": "child (under 13 years old)",
    "teen": "teenager (13-19 years old)",
    "young-adult": "young adult (20-30 years old)",
    "adult": "adult (30-40 years old)",
    "middle-aged": "middle-aged adult (30-50 years old)",
    "senior": "senior (over 60 years old)",
}
STYLES = {
    "professional": "wearing professional attire",
    "casual": "wearing casual clothes",
    "formal": "wearing formal attire",
    "sporty": "wearing sportswear",
    "traditional": "wearing traditional attire",
    "fashion": "wearing high-fashion clothing",
    "creative": "wearing creative, artistic clothing",
}


@dataclass(frozen=True)
class BuiltPrompt:
    prompt: str
    negative_prompt: str


def _clean(value: Any, limit: int = 120) -> str:
    """One line, no prompt-syntax surprises, bounded."""
    text = " ".join(str(value).split())
    return text[:limit].strip(" ,")


# The closed-vocabulary visual attributes (issue 30) as prompt words; "none" says nothing.
LOOKS = {
    "glasses": {"glasses": "wearing glasses", "sunglasses": "wearing sunglasses"},
    "facialHair": {"stubble": "light stubble", "beard": "with a beard", "mustache": "with a mustache",
                   "none": "clean-shaven"},
    "clothingStyle": {"casual": "casual clothes", "formal": "formal wear", "business": "business attire",
                      "sporty": "sportswear", "streetwear": "streetwear"},
    "expression": {"smiling": "smiling", "neutral": "neutral expression", "serious": "serious expression",
                   "laughing": "laughing"},
    "background": {"plain": "plain background", "indoor": "indoor setting", "nature": "nature background",
                   "city": "city background"},
}


def build_prompt(fields: dict) -> BuiltPrompt:
    """`fields` uses the API's names: prompt, personaName, personaAge, personaPersonality,
    personaBackground, gender, ageRange, ethnicity, bodyType, hairStyle, hairColor, eyeColor,
    skinTone, style, and the visual hairLength, glasses, facialHair, clothingStyle, expression,
    background. Missing or empty fields are skipped."""
    parts: list[str] = []
    if fields.get("personaName"):
        parts.append(_clean(fields["personaName"], 60))
    if fields.get("personaAge"):
        parts.append(f"{int(fields['personaAge'])} years old")
    traits = [_clean(t, 40) for t in (fields.get("personaPersonality") or []) if _clean(t, 40)]
    if traits:
        parts.append(f"{', '.join(traits[:5])} personality")
    if fields.get("gender"):
        parts.append(_clean(fields["gender"], 40))
    if fields.get("ageRange"):
        parts.append(AGE_RANGES.get(fields["ageRange"], _clean(fields["ageRange"], 40)))
    if fields.get("ethnicity"):
        parts.append(f"{_clean(fields['ethnicity'], 40)} ethnicity")
    if fields.get("bodyType"):
        parts.append(f"{_clean(fields['bodyType'], 40)} body type")
    if fields.get("hairLength") == "bald":
        parts.append("bald")
    else:
        hair = " ".join(_clean(fields[k], 40) for k in ("hairLength", "hairColor", "hairStyle") if fields.get(k))
        if hair:
            parts.append(f"{hair} hair")
    if fields.get("eyeColor"):
        parts.append(f"{_clean(fields['eyeColor'], 40)} eyes")
    if fields.get("skinTone"):
        parts.append(f"{_clean(fields['skinTone'], 40)} skin tone")
    parts.extend(LOOKS[k][fields[k]] for k in ("glasses", "facialHair", "clothingStyle", "expression")
                 if fields.get(k) in LOOKS[k])
    if fields.get("style"):
        parts.append(STYLES.get(fields["style"], f"{_clean(fields['style'], 40)} style"))
    if fields.get("background") in LOOKS["background"]:
        parts.append(LOOKS["background"][fields["background"]])
    if fields.get("prompt"):
        parts.append(_clean(fields["prompt"], USER_PROMPT_MAX))
    if fields.get("personaBackground"):
        parts.append(_clean(fields["personaBackground"], 200))
    head = ", ".join(p for p in parts if p)
    quality = ", ".join(QUALITY_TERMS)
    room = PROMPT_MAX - len(quality) - 2
    if len(head) > room:
        head = head[:room].rsplit(",", 1)[0] if "," in head[:room] else head[:room]
    prompt = f"{head}, {quality}" if head else quality
    return BuiltPrompt(prompt=prompt, negative_prompt=NEGATIVE_PROMPT)
