"""Presets and persona examples: curated, shared, read-only starting points for an avatar.

    service.py    the catalogue (seeded idempotently), reads, and "use a preset" into a project
    store.py      the curated partitions' data access, by name, and the gallery: each container's
                  copy of them, served from memory for GALLERY_TTL_SECONDS
"""
