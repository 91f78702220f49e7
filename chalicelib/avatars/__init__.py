"""Avatars: a face plus a persona and visual attributes, kept in a project.

    service.py        read, list with filters, edit, delete, and the transition to `ready` that
                      every source (upload, generation, preset) goes through so counters stay exact
    store.py          the avatars' data access, by name: every read and write of an avatar's items
                      (the avatar, its per-app summaries and history when it goes) and of file intents
    uploads.py        presigned POSTs, and the worker's side: validate the bytes, make the copies
    images.py         Pillow: checks, display copy, face-aware 300×300 thumbnail
    image_metadata.py metadata removal without re-encoding (EXIF/GPS, XMP, text chunks)
    crops.py          the chosen crop and the thumbnail it makes
    file_intents.py   an intent (with a TTL) before each derived file is written, so the sweeper finds
                      stray files in time proportional to new files
    vocabulary.py     one spelling per attribute value (presets, filters, badges and the API)
    versions.py       version history (issue 29): every change of name, persona, attributes or crop
                      is a numbered version in the change's transaction; restore; lineage (source,
                      derivatives of restyles and variations)
    suggestions.py    attribute suggestions after an upload is ready (a zero-shot model, visual
                      attributes only), and the user's accept / dismiss

Modules are imported by name (`from chalicelib.avatars import uploads`), so the API never loads
Pillow and the upload worker never loads the routes.
"""
