"""The folders are the layers (docs/architecture.md): the AWS adapters in chalicelib/aws import no
domain module, no route, no handler and not the wiring — at module level or inside a function."""
from __future__ import annotations

import ast

from tests.support.infra import ROOT

# What an adapter may use of chalicelib besides chalicelib.aws itself: the base layer.
BASE = {"chalicelib.config", "chalicelib.errors", "chalicelib.clock", "chalicelib.ids"}


def _chalicelib_imports(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chalicelib"):
            names |= {node.module} if node.module != "chalicelib" else {f"chalicelib.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("chalicelib")}
    return names


def test_the_aws_adapters_import_only_each_other_and_the_base():
    adapters = sorted((ROOT / "chalicelib" / "aws").glob("*.py"))
    assert len(adapters) >= 8
    for path in adapters:
        outside = {n for n in _chalicelib_imports(path) if not n.startswith("chalicelib.aws")} - BASE
        assert outside == set(), f"{path.name} imports {sorted(outside)}"


def test_the_domain_does_not_import_the_routes_or_handlers():
    for path in sorted((ROOT / "chalicelib").glob("*.py")):
        upward = {n for n in _chalicelib_imports(path)
                  if n.startswith(("chalicelib.api", "chalicelib.handlers")) or n == "chalicelib.dependencies"}
        if path.name == "dependencies.py":
            continue
        assert upward == set(), f"{path.name} imports {sorted(upward)}"
