"""Settings: each field read from the variable of its name in capitals, its default written once
(in the class), and the limits no environment may lift."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from chalicelib.config import Settings

FIELDS = Settings.__annotations__


def test_an_empty_environment_gives_every_class_default():
    settings = Settings.from_env({})
    for name in FIELDS:
        assert getattr(settings, name) == getattr(Settings, name), name



@given(st.data())
def test_every_field_reads_the_variable_of_its_name(data):
    name = data.draw(st.sampled_from(sorted(set(FIELDS) - {"region", "webhook_allow_private", "stage"})))
    kind = FIELDS[name]
    if kind in ("int",):
        value = data.draw(st.integers(min_value=1, max_value=10**6))
        raw = str(value)
    elif kind == "float":
        value = data.draw(st.floats(min_value=0.001, max_value=1e6, allow_nan=False))
        raw = repr(value)
    elif kind == "tuple[float, ...]":
        value = tuple(data.draw(st.lists(st.integers(0, 10**5).map(float), min_size=1, max_size=5)))
        raw = ",".join(repr(v) for v in value)
    else:
        value = raw = data.draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30))
    settings = Settings.from_env({name.upper(): raw})
    expected = value
    if name == "jwt_leeway_seconds":
        expected = min(value, 60)
    assert getattr(settings, name) == expected
    derived = {}
    if name in ("generation_max_attempts", "generation_backoff_seconds"):
        # the running deadline follows the attempts and the backoff (test_generation_timing_config.py)
        derived["generation_deadline_seconds"] = max(Settings.generation_deadline_seconds, Settings.worst_job_seconds(
            settings.generation_max_attempts, settings.generation_backoff_seconds))
    for other in FIELDS:  # and nothing else moved
        if other != name:
            assert getattr(settings, other) == derived.get(other, getattr(Settings, other)), other


def test_region_comes_from_the_aws_variables():
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert Settings.from_env({"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-central-1"


@pytest.mark.parametrize("stage,allowed", [
    ("local", True), ("test", True), (" Local ", True),
    ("prod", False), ("PROD", False), ("prod ", False), (" Prod\t", False), ("production", False),
    ("dev", False), ("staging", False), ("", False)])
def test_private_webhook_targets_are_allowed_only_where_the_local_stack_or_tests_turn_them_on(stage, allowed):
    # GIVEN WEBHOOK_ALLOW_PRIVATE=1 WHEN the stage is anything but the local stack's or the tests'
    # (in any case and spacing) THEN private targets stay refused.
    assert Settings.from_env({"STAGE": stage, "WEBHOOK_ALLOW_PRIVATE": "1"}).webhook_allow_private is allowed


def test_the_stage_is_read_in_lower_case_without_spaces():
    assert Settings.from_env({"STAGE": " PROD "}).stage == "prod"


def test_limits_no_environment_may_lift():
    settings = Settings.from_env({"JWT_LEEWAY_SECONDS": "3600", "WEBHOOK_MAX_IN_FLIGHT": "0"})
    assert settings.jwt_leeway_seconds == 60
    assert settings.webhook_max_in_flight == 1


def test_unknown_settings_are_refused():
    with pytest.raises(TypeError):
        Settings(idempotency_table_name="x")
