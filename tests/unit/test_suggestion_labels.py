"""Attribute suggestions (chalicelib.avatars.suggestions), without I/O: what may be sent to the model,
how its answer becomes suggestions, and the settings and vocabularies they must agree with."""
from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from chalicelib import schemas
from chalicelib.avatars import suggestions as sg
from chalicelib.avatars import vocabulary
from chalicelib.config import Settings

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "tests" / "data" / "attribute-responses"

# Words that name (or stand for) a sensitive trait. None may appear in any phrase the model is sent.
SENSITIVE = re.compile(r"\b(" + "|".join([
    r"skin", r"tone", r"complexion", r"ethnic\w*", r"race", r"racial", r"asian", r"african", r"caucasian", r"white person",
    r"black person", r"latin[oax]", r"hispanic", r"arab\w*", r"indian", r"european", r"indigenous", r"nationality",
    r"religio\w*", r"muslim", r"christian", r"jewish", r"hindu", r"buddhist", r"sikh", r"hijab", r"headscarf", r"veil",
    r"turban", r"kippah", r"yarmulke", r"cross", r"health\w*", r"ill", r"illness", r"sick", r"disease", r"disab\w*",
    r"wheelchair", r"pregnan\w*", r"scar\w*", r"tattoo\w*", r"gay", r"lesbian", r"bisexual", r"queer", r"straight",
    r"trans\w*", r"sexual\w*", r"orientation", r"weight", r"fat", r"obese", r"overweight", r"thin", r"body",
    r"attractive", r"ugly", r"beautiful", r"poor", r"rich", r"criminal", r"emotion\w*", r"sad", r"angry", r"depress\w*",
])+ r")\b", re.IGNORECASE)
# Words of the two person attributes: sent only when the user asked for them on that upload.
PERSON_WORDS = re.compile(r"\b(woman|women|man|men|male|female|girl|boy|teen\w*|young|adult|elderly|old|"
                          r"middle-aged|child|kid|senior|age\w*)\b", re.IGNORECASE)


# ---- what is sent --------------------------------------------------------------------------------

@pytest.mark.parametrize("asked", [None, [], ["gender"], ["ageRange"], ["gender", "ageRange"],
                                   ["ethnicity", "skinTone", "religion", "gender"]])
def test_no_sensitive_label_is_ever_sent(asked):
    labels = sg.labels_for(sg.attributes_for(asked))
    assert labels and not [phrase for phrase in labels if SENSITIVE.search(phrase)]
    assert sg.HYPOTHESIS == "a photo of {}." and not SENSITIVE.search(sg.HYPOTHESIS)


def test_every_phrase_of_every_attribute_is_checked_too():
    # The whole table, not only today's combinations: a new phrase is checked as soon as it is written.
    every = [phrase for options in sg.LABELS.values() for _, phrase in options]
    assert not [phrase for phrase in every if SENSITIVE.search(phrase)]
    assert len(every) == len(set(every))  # one phrase, one attribute: scores are read by phrase


def test_only_allowed_attributes_have_phrases():
    assert set(sg.LABELS) == set(sg.SUGGESTABLE) == set(vocabulary.VISUAL_VALUES) | set(vocabulary.PERSON_VALUES)
    for forbidden in ("ethnicity", "skinTone", "bodyType", "religion", "health", "orientation"):
        assert forbidden not in sg.LABELS
        assert sg.labels_for([forbidden]) == []


def test_gender_and_age_are_sent_only_when_asked():
    without = sg.labels_for(sg.attributes_for(None))
    assert not [phrase for phrase in without if PERSON_WORDS.search(phrase)]
    assert sg.attributes_for(["ethnicity", "skinTone"]) == sg.VISUAL_ATTRIBUTES  # nothing else can be asked
    with_gender = sg.labels_for(sg.attributes_for(["gender"]))
    assert {"a woman", "a man"} <= set(with_gender) and "a teenager" not in with_gender


def test_values_are_the_vocabulary():
    for attribute, options in sg.LABELS.items():
        values = tuple(value for value, _ in options)
        assert values == {**vocabulary.VISUAL_VALUES, **vocabulary.PERSON_VALUES}[attribute]


# ---- scores → suggestions ------------------------------------------------------------------------

def scores_of(**best: tuple[str, float]) -> dict[str, float]:
    """Scores giving each named attribute's value `share`, the rest spread evenly over its other phrases."""
    out = {}
    for attribute, (value, share) in best.items():
        options = sg.LABELS[attribute]
        for v, phrase in options:
            out[phrase] = share if v == value else (1 - share) / (len(options) - 1)
    return out


def test_the_best_value_of_each_attribute_at_or_above_the_threshold_is_suggested():
    scores = scores_of(glasses=("sunglasses", 0.8), expression=("smiling", 0.6), background=("city", 0.59))
    found = sg.pick(scores, ["glasses", "expression", "background"], 0.6)
    assert found == {"glasses": {"value": "sunglasses", "score": 0.8}, "expression": {"value": "smiling", "score": 0.6}}


def test_scores_are_renormalised_within_each_attribute():
    # One call scores every phrase together (a softmax over all of them); within one attribute the
    # shares are what a call with only its phrases would give.
    scores = {phrase: 0.001 for options in sg.LABELS.values() for _, phrase in options}
    scores["a person wearing glasses"] = 0.009
    found = sg.pick(scores, ["glasses"], 0.6)
    assert found == {"glasses": {"value": "glasses", "score": round(0.009 / 0.011, 4)}}


def test_attributes_not_asked_are_not_suggested_and_missing_phrases_count_zero():
    scores = scores_of(gender=("male", 0.99))
    assert sg.pick(scores, sg.attributes_for(None), 0.5) == {}
    assert sg.pick({"a person wearing glasses": 0.3}, ["glasses"], 0.6) == {"glasses": {"value": "glasses", "score": 1.0}}
    assert sg.pick({}, ["glasses"], 0.1) == {}
    assert sg.pick({"a person wearing glasses": -1.0, "a person without glasses": 0.0}, ["glasses"], 0.1) == {}


@given(st.dictionaries(st.sampled_from([p for o in sg.LABELS.values() for _, p in o]),
                       st.floats(0, 1, allow_nan=False), max_size=40), st.floats(0.01, 1))
def test_every_suggestion_is_an_allowed_value_with_a_score_at_or_above_the_threshold(scores, threshold):
    found = sg.pick(scores, sg.SUGGESTABLE, threshold)
    for attribute, suggestion in found.items():
        assert suggestion["value"] in dict(sg.LABELS[attribute])
        assert threshold - 1e-4 <= suggestion["score"] <= 1


def test_the_recorded_answer_maps_to_the_expected_suggestions():
    recorded = {item["label"]: item["score"] for item in json.loads((RECORDED / "portrait-glasses-beard.json").read_text())}
    found = sg.pick(recorded, sg.attributes_for(["gender", "ageRange"]), 0.6)
    assert {k: v["value"] for k, v in found.items()} == {
        "hairColor": "brown", "hairLength": "short", "glasses": "glasses", "facialHair": "beard",
        "clothingStyle": "business", "background": "plain", "expression": "smiling", "gender": "male",
        "ageRange": "adult"}
    flat = {item["label"]: item["score"] for item in json.loads((RECORDED / "flat.json").read_text())}
    assert sg.pick(flat, sg.SUGGESTABLE, 0.6) == {}


# ---- messages and settings -----------------------------------------------------------------------

def test_messages_round_trip_and_others_are_not_ours():
    assert sg.parse_message(sg.message("u1", "ava_1")) == ("u1", "ava_1", 0)
    assert sg.parse_message(sg.message("u1", "ava_1", 3)) == ("u1", "ava_1", 3)
    assert sg.parse_message('{"type": "avatar.suggest", "userId": 5}') == ("", "", 0)
    assert sg.parse_message('{"Records": []}') is None
    assert sg.parse_message("not json") is None
    assert sg.parse_message('{"type": "avatar.thumbnail", "userId": "u", "avatarId": "a"}') is None


@pytest.mark.parametrize("env,on", [
    ({}, False), ({"HF_TOKEN": "t"}, False), ({"ATTRIBUTE_SUGGESTIONS": "on"}, False),
    ({"ATTRIBUTE_SUGGESTIONS": "on", "HF_TOKEN": "t"}, True),
    ({"ATTRIBUTE_SUGGESTIONS": "ON ", "ATTRIBUTE_ENDPOINT_URL": "http://x"}, True),
    ({"ATTRIBUTE_SUGGESTIONS": "auto", "ATTRIBUTE_ENDPOINT_URL": "http://x"}, False)])
def test_suggestions_run_only_when_turned_on_and_a_model_can_be_reached(env, on):
    settings = Settings.from_env(env)
    assert sg.enabled(settings) is on
    assert sg.initial_fields({"suggest": ["gender"]}, settings) == (
        {"suggestion_status": "pending", "suggest_asked": ["gender"]} if on else {})


def test_the_defaults():
    s = Settings()
    assert s.attribute_model == "openai/clip-vit-large-patch14" and s.attribute_suggestions == "off"
    assert 0 < s.attribute_threshold < 1


def test_one_model_call_fits_the_upload_worker_timeout():
    resources = json.loads((ROOT / "infra" / "resources.json").read_text())["Resources"]
    timeout = resources["UploadWorker"]["Properties"]["Timeout"]
    assert Settings().attribute_timeout_seconds + sg.SPARE_SECONDS < timeout


# ---- the vocabularies agree ----------------------------------------------------------------------

SCHEMA_TYPES = {"hairLength": schemas.HairLength, "glasses": schemas.Glasses, "facialHair": schemas.FacialHair,
                "clothingStyle": schemas.ClothingStyle, "background": schemas.SceneBackground,
                "expression": schemas.Expression}


def test_api_enums_filters_and_page_share_the_vocabulary():
    from chalicelib.avatars.service import FILTERABLE_VISUAL
    from chalicelib.querystrings import SPECS

    core = (ROOT / "web" / "core.js").read_text()
    assert set(typing.get_args(schemas.SuggestableAttribute)) == set(sg.SUGGESTABLE)
    assert set(FILTERABLE_VISUAL) == set(SCHEMA_TYPES)
    for attribute, kind in SCHEMA_TYPES.items():
        values = vocabulary.VISUAL_VALUES[attribute]
        assert set(typing.get_args(kind)) == set(values), attribute
        assert SPECS["AvatarListQuery"][attribute][1].__self__ == frozenset(values), attribute
        listed = re.search(rf"\b{attribute}: \[([^\]]*)\]", core)
        assert listed, f"web/core.js ATTRIBUTES has no {attribute}"
        assert set(re.findall(r'"([^"]+)"', listed.group(1))) == set(values), attribute
