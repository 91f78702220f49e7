"""Every place the service leans on a library's internals, or replaces a library path with its own, is
listed here with the version it was checked against and the number that justifies it. An upgrade of
that library fails this test until someone re-runs the override's own test and the measurement, and
updates the version here: the cost of keeping an override is paid on purpose, not by surprise.

    override (file)                                   justified by (measured; docs/architecture.md)
    Model._get_connection (aws/models.py)             one client for all models: ~30 ms per model on a
                                                      cold start without it, the generation worker uses 7
    SlimLoader.is_builtin_path (aws/botocore_data.py) session + first client ~30 ms instead of ~55 ms
    S3 GET presigner (aws/presign.py)                 ~0.008 ms per URL instead of ~0.5 ms; ~40 per page
    query-string and usage-event readers without      pydantic import + schema build 150–270 ms on a
    pydantic (querystrings.py, usage/plain.py)        fresh process, more than the rest of a GET
"""
from __future__ import annotations

from importlib.metadata import version

import pytest

# library → (version checked against, the tests that check what the override relies on)
CHECKED = {
    "pynamodb": ("6.1.0", "tests/unit/test_model_connections.py"),
    "botocore": ("1.44.8", "tests/unit/test_botocore_data.py, tests/unit/test_presign.py"),
    "pydantic": ("2.14.4", "tests/unit/test_querystrings_match_schema.py, tests/unit/test_usage_plain_matches_schema.py"),
}


@pytest.mark.parametrize("library", sorted(CHECKED))
def test_each_override_was_checked_against_the_installed_library(library):
    checked, tests = CHECKED[library]
    assert version(library) == checked, (
        f"{library} is now {version(library)}: run {tests} and the cold-start bench (python -m bench.cold_start), "
        f"then set {library}'s checked version here")


def test_the_overrides_named_here_still_exist():
    # a list of overrides that no longer exist would vouch for nothing
    import inspect

    from chalicelib import querystrings
    from chalicelib.aws import botocore_data, models, presign
    from chalicelib.usage import plain

    assert "_get_connection" in models._Model.__dict__
    assert "def is_builtin_path" in inspect.getsource(botocore_data.loader)
    assert hasattr(presign, "S3Presigner")
    for reader in (querystrings, plain):  # they exist to stay clear of pydantic at import
        assert not any(line.lstrip().startswith(("import pydantic", "from pydantic"))
                       for line in inspect.getsource(reader).splitlines())
