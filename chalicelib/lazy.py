"""A module imported on first use, for the route modules: every Lambda function imports app.py,
so every blueprint's imports are paid by every cold start, while a request needs one domain module.

`importlib.util.LazyLoader` does this too, but is not thread-safe before CPython 3.12.3 and the
local server runs requests on threads; here the first attribute access goes through
`importlib.import_module`, which holds the import lock.
"""
from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


class LazyModule:
    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """`name` itself when it is already imported, else a stand-in that imports it on first use."""
    return sys.modules.get(name) or LazyModule(name)
