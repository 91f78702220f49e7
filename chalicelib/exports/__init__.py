"""Exports: a zip of one avatar or a project's avatars — files, avatar.json, usage history (JSON and
CSV) and a manifest of SHA-256 checksums — streamed to S3 in parts, step by step (docs/exports.md).

    service.py    start (the API's side), run_step (one delivery of the export queue), sweep_item
                  (stalled chains sent again or failed; expired exports' files removed)
    store.py      the export items' data access: every read and write of an export item, by name
    files.py      the S3 side: the multipart upload, step checkpoints, avatars' files read in chunks
    zipstream.py  a zip writer for a stream that cannot seek (data descriptors, Zip64) and the
                  buffer that hands its bytes on as S3 parts
    schemas.py    pydantic models of the export routes

After `usage` in the feature order (it reads avatars, projects, generations and usage history
through their own services) and before `housekeeping` (the sweeper calls it).
"""
