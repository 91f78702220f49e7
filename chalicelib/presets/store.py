"""The presets' data access: every read and write of the curated partitions, by name.

    PRESET  / {category}#{id}    a preset           GSI1 PRESET#ID / {id}
    PERSONA / {category}#{id}    a persona example  GSI1 PERSONA#ID / {id}

Reads come from the gallery: each container reads a whole partition (tens of items, one Query page)
and serves lists, pages and lookups by id from memory for GALLERY_TTL_SECONDS, so every user's
gallery load does not read one shared partition (docs/scaling.md). A container sees its own counter
updates at once and everyone else's within the TTL. Seeding reads and writes the table directly.
"""
from __future__ import annotations

from typing import Any

from chalicelib import clock
from chalicelib.aws.db import update_if
from chalicelib.aws.models import (
    PERSONA_PK,
    PRESET_PK,
    AttributesMap,
    PersonaExampleModel,
    PersonaMap,
    PresetModel,
)

GALLERY_TTL_SECONDS = 60


class _Gallery:
    """One curated partition, read whole and kept for GALLERY_TTL_SECONDS, per container.

    Bound to the container's DynamoDB connection: a new table or endpoint (tests, `dependencies.reset`)
    starts empty. Pages answer the same LastEvaluatedKey shape a Query would, so cursors stay valid.
    """

    def __init__(self, model: Any, pk: str) -> None:
        self.model, self.pk = model, pk
        self._owner: Any = None
        self._loaded_at = 0.0
        self._items: list[Any] = []
        self._by_id: dict[str, Any] = {}

    def invalidate(self) -> None:
        self._owner = None

    def items(self) -> list[Any]:
        from chalicelib.aws import session

        owner, now = session.dynamodb(), clock.now().timestamp()
        if self._owner is not owner or not 0 <= now - self._loaded_at < GALLERY_TTL_SECONDS:
            # Tens of items: one Query page (the loop only guards a partition grown past 1 MB).
            loaded = sorted(self.model.query(self.pk), key=lambda item: item.sk)
            self._items, self._by_id = loaded, {item.id: item for item in loaded}
            self._owner, self._loaded_at = owner, now
        return self._items

    def get(self, item_id: str) -> Any | None:
        self.items()
        return self._by_id.get(item_id)

    def page(self, category: str | None, limit: int, start_key: dict | None) -> tuple[list, dict | None]:
        after = ((start_key or {}).get("SK") or {}).get("S", "")
        prefix = "" if category is None else f"{category}#"
        chosen = [item for item in self.items() if item.sk.startswith(prefix) and item.sk > after]
        page = chosen[:limit]
        if len(chosen) <= limit:
            return page, None
        return page, {"PK": {"S": self.pk}, "SK": {"S": page[-1].sk}}


_PRESETS = _Gallery(PresetModel, PRESET_PK)
_PERSONAS = _Gallery(PersonaExampleModel, PERSONA_PK)


# ---- reads (the gallery) ----------------------------------------------------------------------

def presets_page(category: str | None, limit: int, start_key: dict | None) -> tuple[list[PresetModel], dict | None]:
    """Presets in SK order ({category}#{id}), of one category or all, after the cursor's SK."""
    return _PRESETS.page(category, limit, start_key)


def preset(preset_id: str) -> PresetModel | None:
    """The preset with this id (GSI1 PRESET#ID / {id}, served from the gallery); None when there is none."""
    return _PRESETS.get(preset_id)


def persona_examples_page(category: str | None, limit: int,
                          start_key: dict | None) -> tuple[list[PersonaExampleModel], dict | None]:
    """Persona examples in SK order, of one category or all, after the cursor's SK."""
    return _PERSONAS.page(category, limit, start_key)


def persona_example(example_id: str) -> PersonaExampleModel | None:
    """The persona example with this id (from the gallery); None when there is none."""
    return _PERSONAS.get(example_id)


def forget_cached() -> None:
    """This container reads both partitions again on their next use."""
    _PRESETS.invalidate()
    _PERSONAS.invalidate()


# ---- counters ---------------------------------------------------------------------------------

def count_preset_use(preset: PresetModel) -> bool:
    """ADD popularity 1, condition: the preset exists (a click never re-creates a removed one). False
    when it was removed. The item (cached or not) reads the new value back."""
    return _count(preset, PresetModel.popularity)


def count_persona_use(example: PersonaExampleModel) -> bool:
    """ADD uses 1, condition: the example exists. False when it was removed."""
    return _count(example, PersonaExampleModel.uses)


def _count(item: Any, counter: Any) -> bool:
    return update_if(item, [counter.add(1)], type(item).pk.exists())


# ---- seeding ----------------------------------------------------------------------------------

def all_presets() -> dict[str, PresetModel]:
    """Every preset by id: Query PK=PRESET (paged; seeding only, never the gallery's cache)."""
    return {item.id: item for item in PresetModel.query(PRESET_PK)}


def all_persona_examples() -> dict[str, PersonaExampleModel]:
    """Every persona example by id: Query PK=PERSONA (paged; seeding only)."""
    return {item.id: item for item in PersonaExampleModel.query(PERSONA_PK)}


def new_preset(*, preset_id: str, category: str, name: str, description: str, prompt: str, persona: PersonaMap,
               attributes: AttributesMap, featured: bool, version: int, content_hash: str) -> PresetModel:
    """A preset not yet written (SK {category}#{id}, GSI1 by id), no uses yet."""
    return PresetModel(sk=f"{category}#{preset_id}", id=preset_id, gsi1sk=preset_id, category=category, name=name,
                       description=description, prompt=prompt, persona=persona, attributes=attributes,
                       featured=featured, version=version, content_hash=content_hash, popularity=0)


def new_persona_example(*, example_id: str, category: str, persona: PersonaMap, version: int,
                        content_hash: str) -> PersonaExampleModel:
    """A persona example not yet written (SK {category}#{id}, GSI1 by id), no uses yet."""
    return PersonaExampleModel(sk=f"{category}#{example_id}", id=example_id, gsi1sk=example_id, category=category,
                               persona=persona, uses=0, version=version, content_hash=content_hash)


_COUNTERS = {PresetModel: "popularity", PersonaExampleModel: "uses"}


def write(item: PresetModel | PersonaExampleModel, *, existed: bool) -> None:
    """PutItem of a new entry; for one that existed, UpdateItem of every attribute but its use counter
    (popularity / uses), so a user's click during a re-seed is never lost."""
    if not existed:
        item.save()
        return
    model, counter = type(item), _COUNTERS[type(item)]
    actions = []
    for name, attribute in model.get_attributes().items():
        if name in ("pk", "sk", counter):
            continue
        value = getattr(item, name)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    item.update(actions=actions)


def delete(item: PresetModel | PersonaExampleModel) -> None:
    """DeleteItem of the entry."""
    item.delete()


# ---- used by generation / usage / events
