"""Presets and persona examples: curated, shared, read-only starting points for an avatar.

    service.py    the catalogue (seeded idempotently), reads, and "use a preset" into a project
"""
