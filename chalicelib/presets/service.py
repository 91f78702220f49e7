"""Presets and persona examples: curated, shared, read-only starting points for an avatar.

    list_presets / get_preset / count_preset_use        reads for the API, from the gallery cache
    list_persona_examples / use_persona_example
    seed(...)                                           the idempotent loader of data/*.v1.json

The data lives in versioned files in the repository; `seed` writes what changed (by content hash),
keeps the counters users produced, removes entries the file no longer has and renders a preview
for each preset whose look changed. Both `make run` and a deployment run it.

Every user's gallery load would otherwise read the one `PRESET` partition (docs/scaling.md): each
container keeps the whole curated partition (tens of items, one Query page) for GALLERY_TTL_SECONDS
and serves lists, pages and lookups by id from memory. A container sees its own counter updates at
once and everyone else's within the TTL.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from pynamodb.exceptions import UpdateError

from chalicelib import clock

from chalicelib.avatars import vocabulary
from chalicelib.aws.db import condition_failed
from chalicelib.errors import NotFoundError
from chalicelib.aws.models import (
    PERSONA_PK,
    PRESET_PK,
    AttributesMap,
    PersonaExampleModel,
    PersonaMap,
    PresetModel,
)
from chalicelib.observability import logger

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.storage import Storage

GALLERY_TTL_SECONDS = 60
PRESET_PREFIX = "presets/"  # outside uploads/: writing previews never triggers the upload worker
PERSONA_KEYS = ("personaName", "personaAge", "personaPersonality", "personaBackground")
ATTRIBUTE_KEYS = ("gender", "ageRange", "ethnicity", "bodyType", "hairStyle", "hairColor", "eyeColor",
                  "skinTone", "style")


def preview_key(preset_id: str, fmt: str) -> str:
    return f"{PRESET_PREFIX}{preset_id}.{ {'JPEG': 'jpg', 'PNG': 'png', 'WEBP': 'webp'}[fmt] }"


def preview_thumbnail_key(preset_id: str) -> str:
    return f"{PRESET_PREFIX}{preset_id}-thumb.jpg"


# ---- JSON -------------------------------------------------------------------------------------

def persona_fields(persona: PersonaMap | None) -> dict:
    p = persona or PersonaMap()
    return {"personaName": p.name, "personaAge": int(p.age) if p.age is not None else None,
            "personaPersonality": list(p.personality or []), "personaBackground": p.background}


def attribute_fields(attributes: AttributesMap | None) -> dict:
    a = attributes or AttributesMap()
    c = vocabulary.canonical  # presets seeded before the one vocabulary read back in it
    return {"gender": c("gender", a.gender), "ageRange": c("ageRange", a.age_range), "ethnicity": a.ethnicity, "bodyType": a.body_type,
            "hairStyle": a.hair_style, "hairColor": a.hair_color, "eyeColor": a.eye_color,
            "skinTone": a.skin_tone, "style": c("style", a.style)}


def preset_to_json(preset: PresetModel, storage: "Storage", url_expiry: int) -> dict:
    return {
        "id": preset.id, "category": preset.category, "name": preset.name, "description": preset.description,
        "prompt": preset.prompt, "featured": bool(preset.featured), "popularity": int(preset.popularity or 0),
        **persona_fields(preset.persona), **attribute_fields(preset.attributes),
        "previewUrl": storage.presigned_get(preset.preview_key, url_expiry),
        "thumbnailUrl": storage.presigned_get(preset.thumbnail_key, url_expiry),
    }


def generation_fields(preset: PresetModel) -> dict:
    """The generation request a preset stands for (before the user's overrides)."""
    fields = {**persona_fields(preset.persona), **attribute_fields(preset.attributes),
              "prompt": preset.prompt, "name": preset.name}
    return {k: v for k, v in fields.items() if v not in (None, [], "")}


def persona_example_to_json(example: PersonaExampleModel) -> dict:
    return {"id": example.id, "category": example.category, "uses": int(example.uses or 0),
            **persona_fields(example.persona)}


# ---- reads --------------------------------------------------------------------------------------

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


PRESETS = _Gallery(PresetModel, PRESET_PK)
PERSONAS = _Gallery(PersonaExampleModel, PERSONA_PK)


def invalidate_cache() -> None:
    PRESETS.invalidate()
    PERSONAS.invalidate()


def _count(item: Any, counter: Any) -> bool:
    """One atomic ADD; False when the entry was removed meanwhile (never re-created by a click).

    PynamoDB's update reads the new values back into `item`: on a cached item, this container's
    own clicks show at once."""
    try:
        item.update(actions=[counter.add(1)], condition=type(item).pk.exists())
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        return False
    return True


def list_presets(*, category: str | None, limit: int, start_key: dict | None) -> tuple[list[PresetModel], dict | None]:
    return PRESETS.page(category, limit, start_key)


def get_preset(preset_id: str) -> PresetModel:
    preset = PRESETS.get(preset_id)
    if preset is None:
        raise NotFoundError("Preset not found", details={"id": preset_id})
    return preset


def count_preset_use(preset: PresetModel) -> None:
    _count(preset, PresetModel.popularity)


def list_persona_examples(*, category: str | None, limit: int,
                          start_key: dict | None) -> tuple[list[PersonaExampleModel], dict | None]:
    return PERSONAS.page(category, limit, start_key)


def use_persona_example(example_id: str) -> PersonaExampleModel:
    example = PERSONAS.get(example_id)
    if example is None or not _count(example, PersonaExampleModel.uses):
        raise NotFoundError("Persona example not found", details={"id": example_id})
    return example


# ---- seeding ----------------------------------------------------------------------------------

@dataclass
class SeedReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    previews: list[str] = field(default_factory=list)
    preview_failures: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{len(self.written)} written, {len(self.unchanged)} unchanged, {len(self.removed)} removed, "
                f"{len(self.previews)} previews rendered, {len(self.preview_failures)} preview failures")


def content_hash(entry: dict) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def _persona_map(fields: dict) -> PersonaMap:
    return PersonaMap(name=fields.get("personaName"), age=fields.get("personaAge"),
                      personality=fields.get("personaPersonality") or None,
                      background=fields.get("personaBackground"))


def _attributes_map(fields: dict) -> AttributesMap:
    c = vocabulary.canonical
    return AttributesMap(gender=c("gender", fields.get("gender")), age_range=c("ageRange", fields.get("ageRange")),
                         ethnicity=fields.get("ethnicity"), body_type=fields.get("bodyType"),
                         hair_style=fields.get("hairStyle"), hair_color=fields.get("hairColor"),
                         eye_color=fields.get("eyeColor"), skin_tone=fields.get("skinTone"),
                         style=c("style", fields.get("style")))


def _existing(model: Any, pk: str) -> dict[str, Any]:
    """Every item of a curated partition (tens of items; a background job, so paging is fine)."""
    return {item.id: item for item in model.query(pk)}


def seed(presets_doc: dict, personas_doc: dict, *, storage: "Storage | None" = None,
         render: Callable[[dict], bytes] | None = None, thumb_size: int = 300) -> SeedReport:
    """Load the data files into the table; safe to run on every start.

    `render(preset) -> image bytes` draws a preview (the offline provider locally, FLUX on AWS);
    without it (or without storage) presets keep whatever preview they have.
    """
    report = SeedReport()
    version = int(presets_doc.get("version", 1))
    current = _existing(PresetModel, PRESET_PK)
    wanted = {entry["id"]: entry for entry in presets_doc["presets"]}
    for preset_id, entry in wanted.items():
        digest = content_hash(entry)
        old = current.get(preset_id)
        if old is not None and old.content_hash == digest and old.sk == f"{entry['category']}#{preset_id}" \
                and (old.preview_key or render is None):
            report.unchanged.append(preset_id)
            continue
        if old is not None and old.sk != f"{entry['category']}#{preset_id}":
            old.delete()  # moved to another category: its key changes
            old = None
        preset = PresetModel(sk=f"{entry['category']}#{preset_id}", id=preset_id, gsi1sk=preset_id,
                             category=entry["category"], name=entry["name"],
                             description=entry.get("description", ""), prompt=entry["prompt"],
                             persona=_persona_map(entry.get("persona") or {}),
                             attributes=_attributes_map(entry.get("attributes") or {}),
                             featured=bool(entry.get("featured")), version=version, content_hash=digest,
                             popularity=0)
        if old is not None and ((old.content_hash == digest and old.preview_key) or render is None or storage is None):
            # Nothing to draw with: a slightly stale preview beats none.
            preset.preview_key, preset.thumbnail_key = old.preview_key, old.thumbnail_key
        elif render is not None and storage is not None:
            _render_preview(preset, entry, storage, render, thumb_size, report)
        _write(preset, PresetModel, existed=old is not None, counter="popularity")
        report.written.append(preset_id)
    for preset_id, old in current.items():
        if preset_id not in wanted:
            old.delete()
            if storage is not None:
                storage.delete([old.preview_key, old.thumbnail_key])
            report.removed.append(preset_id)

    examples = {e["id"]: e for e in personas_doc["personaExamples"]}
    existing_examples = _existing(PersonaExampleModel, PERSONA_PK)
    for example_id, entry in examples.items():
        digest = content_hash(entry)
        old = existing_examples.get(example_id)
        if old is not None and old.content_hash == digest:
            report.unchanged.append(example_id)
            continue
        sk = f"{entry['category']}#{example_id}"
        if old is not None and old.sk != sk:
            old.delete()
            old = None
        example = PersonaExampleModel(sk=sk, id=example_id, gsi1sk=example_id, category=entry["category"],
                                      persona=_persona_map(entry), uses=0,
                                      version=int(personas_doc.get("version", 1)), content_hash=digest)
        _write(example, PersonaExampleModel, existed=old is not None, counter="uses")
        report.written.append(example_id)
    for example_id, old in existing_examples.items():
        if example_id not in examples:
            old.delete()
            report.removed.append(example_id)
    invalidate_cache()  # this container at once; the others within GALLERY_TTL_SECONDS
    logger.info("presets seeded", extra={"summary": report.summary()})
    return report


def _write(item: Any, model: Any, *, existed: bool, counter: str) -> None:
    """Every attribute but the usage counter: a user's click during a re-seed is never lost."""
    if not existed:
        item.save()
        return
    actions = []
    for name, attribute in model.get_attributes().items():
        if name in ("pk", "sk", counter):
            continue
        value = getattr(item, name)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    item.update(actions=actions)


def _render_preview(preset: PresetModel, entry: dict, storage: "Storage", render: Callable[[dict], bytes],
                    thumb_size: int, report: SeedReport) -> None:
    from chalicelib.avatars import images

    from chalicelib.generation.providers import ProviderError

    try:
        data = render(entry)
        processed = images.process_upload(data, max_pixels=40_000_000, max_bytes=20 * 1024 * 1024,
                                          thumb_size=thumb_size)
    except (images.ImageRejectedError, ProviderError) as exc:
        # The preset is still usable without a picture; the next seeding tries again.
        report.preview_failures[preset.id] = exc.reason
        return
    keys = preview_key(preset.id, processed.info.format), preview_thumbnail_key(preset.id)
    storage.put(keys[0], processed.image, processed.image_content_type)
    storage.put(keys[1], processed.thumbnail, processed.thumbnail_content_type)
    preset.preview_key, preset.thumbnail_key = keys
    report.previews.append(preset.id)
