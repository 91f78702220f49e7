"""models.FastLoad must read every item exactly as PynamoDB's own deserialization does."""
from __future__ import annotations

import random

import pytest
from pynamodb.attributes import AttributeContainer, BooleanAttribute, ListAttribute, MapAttribute, NumberAttribute
from pynamodb.attributes import NumberSetAttribute, TTLAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute

from chalicelib.aws.models import ALL_MODELS, AttributesMap, CropMap, FastLoad, PersonaMap

CONTAINERS = [*ALL_MODELS, PersonaMap, AttributesMap, CropMap]


def _sample(attr, rnd: random.Random):
    """A raw DynamoDB value for `attr`, or None (attribute absent) / {"NULL": True}."""
    roll = rnd.random()
    if roll < 0.2:
        return None
    if roll < 0.25:
        return {"NULL": True}
    if isinstance(attr, MapAttribute):
        if type(attr) is MapAttribute:  # raw map
            return {"M": {"k": {"S": "v"}, "n": {"N": "3"}}}
        return {"M": _item(type(attr), rnd)}
    if isinstance(attr, BooleanAttribute):
        return {"BOOL": rnd.random() < 0.5}
    if isinstance(attr, (TTLAttribute,)):
        return {"N": str(1_900_000_000 + rnd.randrange(1000))}
    if isinstance(attr, NumberAttribute):
        return {"N": str(rnd.randrange(-5, 10_000))}
    if isinstance(attr, UTCDateTimeAttribute):
        return {"S": "2026-11-25T12:00:00.000000+0000"}
    if isinstance(attr, UnicodeSetAttribute):
        return {"SS": ["a", "b"]}
    if isinstance(attr, NumberSetAttribute):
        return {"NS": ["1", "2"]}
    if isinstance(attr, ListAttribute):
        return {"L": [{"S": "x"}, {"S": "y"}]}
    if isinstance(attr, UnicodeAttribute):
        return {"S": rnd.choice(["", "text", "ünï"])}
    raise AssertionError(f"no sample for {type(attr).__name__}: add one")


def _item(cls, rnd):
    item = {}
    for attr in cls.get_attributes().values():
        value = _sample(attr, rnd)
        if value is not None:
            item[attr.attr_name] = value
    return item


def _state(obj):
    """Values with their types, nested containers included (a dict is not a MapAttribute)."""
    if isinstance(obj, AttributeContainer):
        return type(obj).__name__, {k: _state(v) for k, v in obj.attribute_values.items()}
    if isinstance(obj, dict):
        return "dict", {k: _state(v) for k, v in obj.items()}
    if isinstance(obj, (list, set)):
        return type(obj).__name__, [_state(v) for v in obj]
    return type(obj).__name__, obj


@pytest.mark.parametrize("cls", CONTAINERS, ids=lambda c: c.__name__)
def test_fast_load_reads_items_as_pynamodb_does(cls):
    assert issubclass(cls, FastLoad)
    rnd = random.Random(cls.__name__)
    for _ in range(200):
        raw = _item(cls, rnd)
        fast = cls._instantiate(raw)
        slow = super(FastLoad, cls)._instantiate.__func__(cls, raw)  # PynamoDB's own
        assert type(fast) is type(slow) is cls
        assert set(vars(fast)) == set(vars(slow))
        assert _state(fast) == _state(slow)
        assert fast._container_serialize(null_check=False) == slow._container_serialize(null_check=False)


def test_models_from_raw_data_use_fast_load():
    from chalicelib.aws.models import PresetModel

    preset = PresetModel.from_raw_data({"PK": {"S": "PRESET"}, "SK": {"S": "c#p"}, "id": {"S": "p"},
                                        "persona": {"M": {"name": {"S": "Ana"}}}})
    assert preset.persona.name == "Ana" and preset.popularity == 0 and preset.featured is False
