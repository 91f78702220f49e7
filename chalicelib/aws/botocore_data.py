"""A slim copy of botocore's data for the services the app's clients use, so building a client on a
cold start reads kilobytes instead of scanning and parsing botocore's whole catalogue.

Building the first client of a session costs ~110 ms, ~80 of them in two data lookups: parsing
endpoints.json (1.25 MB: every endpoint of every service) and listing every service directory
(~450 of them, ~2,700 stat calls, twice) just to check the name. This folder holds the same files
for DynamoDB, EventBridge, S3, Secrets Manager and SQS only, with endpoints.json cut to those services, and every JSON file written
plain and minified with the service models' documentation strings emptied (three quarters of the
text: DynamoDB's model is 135 kB instead of 556 kB and parses in ~1.5 ms instead of ~3.9 ms with its
gunzip); a session loads from it
alone (a documented botocore `Loader` with `include_default_search_paths=False`). It is built from
the installed botocore by `make venv` and `scripts/package.sh` (`python -m chalicelib.aws.botocore_data`)
and used only when its VERSION matches the botocore that runs — anything else falls back to the full
catalogue. tests/unit/test_botocore_data.py checks that clients built both ways are the same.
"""
from __future__ import annotations

import os
from typing import Any

SERVICES = ("dynamodb", "events", "s3", "secretsmanager", "sqs")
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_botocore_data")
_ROOT_FILES = ("_retry.json", "partitions.json", "sdk-default-configuration.json")


def loader(path: str = DEFAULT_DIR) -> Any | None:
    """A botocore Loader reading only `path`, or None when it is missing or built for another botocore."""
    try:
        with open(os.path.join(path, "VERSION")) as fh:
            built_for = fh.read().strip()
    except OSError:
        return None
    import botocore
    from botocore.loaders import Loader

    if built_for != botocore.__version__:
        return None

    class SlimLoader(Loader):
        def is_builtin_path(self, path: str) -> bool:
            # The one override of botocore here, kept because the public alternatives lose the gain:
            # AWS_DATA_PATH (or `extra_search_paths` with the default paths kept) still lists botocore's
            # ~450 service folders and its session + first client cost ~55 ms against ~30 ms here
            # (measured 2026-12-02, docs/architecture.md "botocore data"), a quarter of the API's
            # cold-start budget. Without it botocore treats this endpoints.json, its own data cut, as a
            # custom file and resolves S3 URLs differently; test_botocore_data fails if an upgrade
            # stops honouring it (test_without_the_override_s3_requests_differ shows what it guards).
            return True

    return SlimLoader(extra_search_paths=[path], include_default_search_paths=False)


def build(dest: str = DEFAULT_DIR, services: tuple[str, ...] = SERVICES) -> str:
    """Write the slim data for `services` from the installed botocore to `dest` (replaced atomically)."""
    import json
    import shutil

    import botocore

    source = os.path.join(os.path.dirname(botocore.__file__), "data")
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name in _ROOT_FILES:
        shutil.copy2(os.path.join(source, name), tmp)
    with open(os.path.join(source, "endpoints.json")) as fh:
        endpoints = json.load(fh)
    for partition in endpoints["partitions"]:
        partition["services"] = {k: v for k, v in partition["services"].items() if k in services}
    with open(os.path.join(tmp, "endpoints.json"), "w") as fh:
        json.dump(endpoints, fh, separators=(",", ":"))
    for service in services:
        # The newest API version is the one botocore picks when none is asked for.
        version = max(os.listdir(os.path.join(source, service)))
        target = os.path.join(tmp, service, version)
        os.makedirs(target)
        for name in os.listdir(os.path.join(source, service, version)):
            if name.startswith("examples-"):  # documentation only
                continue
            data = _read_json(os.path.join(source, service, version, name))
            if name.startswith("service-2.json"):
                data = _without_docs(data)
            with open(os.path.join(target, name.removesuffix(".gz")), "w") as fh:
                json.dump(data, fh, separators=(",", ":"))
    with open(os.path.join(tmp, "VERSION"), "w") as fh:
        fh.write(botocore.__version__ + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def _read_json(path: str) -> Any:
    import gzip
    import json

    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as fh:
        return json.load(fh)


def _without_docs(node: Any) -> Any:
    """The model with its `documentation` strings emptied (botocore reads them only to write
    docstrings, but indexes some directly, so the keys stay). Only string values: a structure member
    may itself be *named* "documentation"."""
    if isinstance(node, dict):
        return {k: "" if k == "documentation" and isinstance(v, str) else _without_docs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_docs(v) for v in node]
    return node


if __name__ == "__main__":
    print("botocore data for", ", ".join(SERVICES), "->", build())
