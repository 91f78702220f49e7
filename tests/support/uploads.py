"""Helpers for upload tests: ask for uploads through the API, inspect presigned POST policies,
and post files to S3 the way a browser does (multipart/form-data, fields first, file last)."""
from __future__ import annotations

import base64
import json
import time
from typing import Any, Callable

UPLOAD_DEFAULTS = {"name": "Portrait", "contentType": "image/jpeg"}


def upload_spec(data: bytes | None = None, **fields: Any) -> dict:
    """One file's upload request body; `size` is taken from `data` unless given."""
    spec = {**UPLOAD_DEFAULTS, **fields}
    if "size" not in spec:
        spec["size"] = len(data) if data is not None else 1000
    return spec


def decode_policy(fields: dict) -> dict:
    """The JSON policy document of a presigned POST (its `expiration` and `conditions`)."""
    return json.loads(base64.b64decode(fields["policy"]))


def policy_conditions(fields: dict) -> list:
    return decode_policy(fields)["conditions"]


def browser_post(url: str, fields: dict, data: bytes, *, filename: str = "photo.jpg",
                 content_type: str | None = None, timeout: float = 10.0):
    """POST the file as an HTML form would. `file` must be the last field: S3 ignores what follows it."""
    import requests

    files = {"file": (filename, data, content_type or fields.get("Content-Type", "application/octet-stream"))}
    return requests.post(url, data=fields, files=files, timeout=timeout)


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float, interval: float = 0.02) -> Any:
    """Call `fetch` until `done(result)` or the deadline; returns the last result either way."""
    deadline = time.monotonic() + timeout
    result = fetch()
    while not done(result) and time.monotonic() < deadline:
        time.sleep(interval)
        result = fetch()
    return result


def drain_now(client, queue_url: str, handler_name: str, max_rounds: int = 10) -> int:
    """tests.functional.conftest.drain addressed by queue URL."""
    from tests.functional.conftest import drain

    return drain(client, {"queue": queue_url}, "queue", handler_name, max_rounds=max_rounds)
