"""The scheduled sweeper (chalicelib.housekeeping.sweeper): finishes what crashes, lost messages and timeouts left."""
from __future__ import annotations

from typing import Any

from chalicelib.dependencies import get_deps


def handle(event: Any = None) -> dict:
    from chalicelib.housekeeping.sweeper import sweep

    deps = get_deps()
    return sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings).counts()
