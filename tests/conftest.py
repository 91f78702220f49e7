"""Shared fixtures. Only `local_stack` lives here: a whole local stack, started lazily — unit and
functional tests never request it, so they never start it."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """`python -m local.stack` on free ports and a temporary data dir (LOCAL_VISIBILITY_TIMEOUT=3).
    Yields tests.support.local_stack.LocalStack: .outputs, .api(path), .token(user), .request(...)."""
    from tests.support.local_stack import LocalStack

    stack = LocalStack(tmp_path_factory.mktemp("local-stack")).start()
    try:
        yield stack
    finally:
        stack.stop()
