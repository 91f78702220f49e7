"""The prompt builder: the original service's wording, bounded, deterministic."""
from __future__ import annotations

from chalicelib.generation.prompts import NEGATIVE_PROMPT, PROMPT_MAX, build_prompt


def test_original_example_is_reproduced():
    built = build_prompt({"personaName": "Sarah", "personaAge": 32, "personaPersonality": ["professional"],
                          "gender": "female", "ageRange": "middle-aged", "ethnicity": "asian",
                          "style": "professional", "prompt": "confident business woman"})
    assert built.prompt.startswith(
        "Sarah, 32 years old, professional personality, female, middle-aged adult (30-50 years old), "
        "asian ethnicity, wearing professional attire, confident business woman, "
        "professional photo studio portrait, ultra realistic")


def test_negative_prompt_guards_against_non_photographic_output():
    built = build_prompt({"prompt": "a face"})
    for term in ("cartoon", "anime", "3d render", "deformed"):
        assert term in built.negative_prompt
    assert built.negative_prompt == NEGATIVE_PROMPT


def test_missing_fields_are_skipped_and_hair_is_combined():
    built = build_prompt({"prompt": "smiling", "hairColor": "black", "hairStyle": "long wavy", "eyeColor": "brown"})
    assert built.prompt.startswith("black long wavy hair, brown eyes, smiling, ")
    assert "None" not in built.prompt and ", ," not in built.prompt


def test_prompt_is_bounded_and_keeps_its_quality_terms():
    built = build_prompt({"prompt": "word " * 500, "personaBackground": "b" * 5000,
                          "personaPersonality": ["kind"] * 50})
    assert len(built.prompt) <= PROMPT_MAX
    assert built.prompt.endswith("8k")


def test_newlines_and_spacing_in_user_text_are_flattened():
    built = build_prompt({"prompt": "line one\n\nline   two\tend", "personaName": "  Ana  "})
    assert built.prompt.startswith("Ana, line one line two end, ")


def test_same_fields_same_prompt():
    fields = {"prompt": "x y z", "gender": "male", "style": "casual"}
    assert build_prompt(fields) == build_prompt(dict(fields))


def test_the_visual_attributes_of_issue_30_become_prompt_words():
    built = build_prompt({"prompt": "a portrait", "hairLength": "short", "hairColor": "brown", "glasses": "sunglasses",
                          "facialHair": "beard", "clothingStyle": "business", "expression": "smiling",
                          "background": "city"})
    for words in ("short brown hair", "wearing sunglasses", "with a beard", "business attire", "smiling",
                  "city background"):
        assert words in built.prompt, words
    assert "bald" in build_prompt({"hairLength": "bald", "hairColor": "brown"}).prompt
    assert "hair" not in build_prompt({"hairLength": "bald", "hairColor": "brown"}).prompt
    assert "glasses" not in build_prompt({"glasses": "none"}).prompt  # "none" says nothing
