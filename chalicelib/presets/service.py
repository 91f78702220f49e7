"""Presets and persona examples: curated, shared, read-only starting points for an avatar.

    list_presets / get_preset / count_preset_use        reads for the API, from the gallery cache
    list_persona_examples / use_persona_example
    seed(...)                                           the idempotent loader of data/*.v1.json

The data lives in versioned files in the repository; `seed` writes what changed (by content hash),
keeps the counters users produced, removes entries the file no longer has and renders a preview
for each preset whose look changed. Both `make run` and a deployment run it.

Reads are served from each container's copy of the curated partitions (store.py, "the gallery"):
every user's gallery load does not read the one `PRESET` partition (docs/scaling.md).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from chalicelib.avatars import vocabulary
from chalicelib.errors import NotFoundError
from chalicelib.aws.models import AttributesMap, PersonaExampleModel, PersonaMap, PresetModel
from chalicelib.observability import logger
from chalicelib.presets import store

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.storage import Storage

# How long a container serves its copy of the catalogue (store.py) before reading it again.
GALLERY_TTL_SECONDS = store.GALLERY_TTL_SECONDS
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

def invalidate_cache() -> None:
    store.forget_cached()


def list_presets(*, category: str | None, limit: int, start_key: dict | None) -> tuple[list[PresetModel], dict | None]:
    return store.presets_page(category, limit, start_key)


def get_preset(preset_id: str) -> PresetModel:
    preset = store.preset(preset_id)
    if preset is None:
        raise NotFoundError("Preset not found", details={"id": preset_id})
    return preset


def count_preset_use(preset: PresetModel) -> None:
    store.count_preset_use(preset)


def list_persona_examples(*, category: str | None, limit: int,
                          start_key: dict | None) -> tuple[list[PersonaExampleModel], dict | None]:
    return store.persona_examples_page(category, limit, start_key)


def use_persona_example(example_id: str) -> PersonaExampleModel:
    example = store.persona_example(example_id)
    if example is None or not store.count_persona_use(example):
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


def seed(presets_doc: dict, personas_doc: dict, *, storage: "Storage | None" = None,
         render: Callable[[dict], bytes] | None = None, thumb_size: int = 300) -> SeedReport:
    """Load the data files into the table; safe to run on every start.

    `render(preset) -> image bytes` draws a preview (the offline provider locally, FLUX on AWS);
    without it (or without storage) presets keep whatever preview they have.
    """
    report = SeedReport()
    version = int(presets_doc.get("version", 1))
    current = store.all_presets()
    wanted = {entry["id"]: entry for entry in presets_doc["presets"]}
    for preset_id, entry in wanted.items():
        digest = content_hash(entry)
        old = current.get(preset_id)
        preset = store.new_preset(preset_id=preset_id, category=entry["category"], name=entry["name"],
                                  description=entry.get("description", ""), prompt=entry["prompt"],
                                  persona=_persona_map(entry.get("persona") or {}),
                                  attributes=_attributes_map(entry.get("attributes") or {}),
                                  featured=bool(entry.get("featured")), version=version, content_hash=digest)
        if old is not None and old.content_hash == digest and old.sk == preset.sk \
                and (old.preview_key or render is None):
            report.unchanged.append(preset_id)
            continue
        if old is not None and old.sk != preset.sk:
            store.delete(old)  # moved to another category: its key changes
            old = None
        if old is not None and ((old.content_hash == digest and old.preview_key) or render is None or storage is None):
            # Nothing to draw with: a slightly stale preview beats none.
            preset.preview_key, preset.thumbnail_key = old.preview_key, old.thumbnail_key
        elif render is not None and storage is not None:
            _render_preview(preset, entry, storage, render, thumb_size, report)
        store.write(preset, existed=old is not None)
        report.written.append(preset_id)
    for preset_id, old in current.items():
        if preset_id not in wanted:
            store.delete(old)
            if storage is not None:
                storage.delete([old.preview_key, old.thumbnail_key])
            report.removed.append(preset_id)

    examples = {e["id"]: e for e in personas_doc["personaExamples"]}
    existing_examples = store.all_persona_examples()
    for example_id, entry in examples.items():
        digest = content_hash(entry)
        old = existing_examples.get(example_id)
        if old is not None and old.content_hash == digest:
            report.unchanged.append(example_id)
            continue
        example = store.new_persona_example(example_id=example_id, category=entry["category"],
                                            persona=_persona_map(entry), version=int(personas_doc.get("version", 1)),
                                            content_hash=digest)
        if old is not None and old.sk != example.sk:
            store.delete(old)
            old = None
        store.write(example, existed=old is not None)
        report.written.append(example_id)
    for example_id, old in existing_examples.items():
        if example_id not in examples:
            store.delete(old)
            report.removed.append(example_id)
    invalidate_cache()  # this container at once; the others within GALLERY_TTL_SECONDS
    logger.info("presets seeded", extra={"summary": report.summary()})
    return report


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
