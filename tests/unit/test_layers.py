"""The folders are the layers (docs/architecture.md), checked on every import — at module level or
inside a function — so a newcomer can trust the tree:

    entry points   app.py, chalicelib/api (routes), chalicelib/handlers (events), dependencies (wiring)
    features       users < sharing < avatars < generation < projects < presets < usage < events < exports < housekeeping
    stores         each feature's store.py: the data access of its items (tests/unit/test_data_access.py)
    adapters       chalicelib/aws
    base           clock, config, errors, ids, cursors, querystrings, observability, auth, schemas

A layer imports only layers below it; a feature imports only features before it in that order, and
any feature's store (a transaction joins items of several); a store imports only adapters and base;
base modules and entry points may use each other. No module imports itself back through others."""
from __future__ import annotations

import ast

from tests.support.infra import ROOT

LIB = ROOT / "chalicelib"
BASE = {"clock", "config", "errors", "ids", "cursors", "querystrings", "observability", "auth", "schemas"}
FEATURES = ["users", "teams", "sharing", "avatars", "generation", "projects", "presets", "usage", "events", "exports", "housekeeping"]
ENTRY = {"api", "handlers", "dependencies"}
# The wire shapes (schemas.py) re-export usage-event.v1's pydantic-free reader, a leaf that the usage
# worker imports without pydantic for its cold start (chalicelib/usage/plain.py).
ALLOWED = {("schemas", "usage.plain")}


def _modules() -> dict[str, object]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
            for p in LIB.rglob("*.py") if "_botocore_data" not in p.parts}


MODULES = _modules()


def _imports(path) -> set[str]:
    """chalicelib modules `path` imports at run time (TYPE_CHECKING blocks are not imports)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chalicelib"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("chalicelib")}
    return names


def _unit(module: str) -> str:
    """`avatars`, `aws`, `api`, … for a package's modules; the module's own name at the top level."""
    return module.split(".")[1] if module.count(".") >= 1 else module


def _is_store(module: str) -> bool:
    """A feature's data access (`chalicelib.avatars.store`): below every feature's rules."""
    parts = module.split(".")
    return len(parts) == 3 and parts[1] in FEATURES and parts[2] == "store"


def _module_rank(module: str) -> tuple[int, int]:
    return (1, 1) if _is_store(module) else _rank(_unit(module))


def _rank(unit: str) -> tuple[int, int]:
    if unit in BASE:
        return (0, 0)
    if unit == "aws":
        return (1, 0)
    if unit in FEATURES:
        return (2, FEATURES.index(unit))
    assert unit in ENTRY, f"chalicelib/{unit} is in no layer: add it to tests/unit/test_layers.py and the docs"
    return (3, 0)


def test_every_module_imports_only_layers_below_it_or_features_before_it():
    wrong = []
    for module, path in MODULES.items():
        if module == "chalicelib":
            continue
        unit = _unit(module)
        for target in _imports(path):
            other = _unit(target) if target != "chalicelib" else unit
            if (other == unit and not _is_store(module)) or (unit, target.removeprefix("chalicelib.")) in ALLOWED:
                continue
            if _module_rank(target) >= _module_rank(module) and not ({unit, other} <= ENTRY or {unit, other} <= BASE):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_aws_adapters_import_only_each_other_and_the_base():
    adapters = [m for m in MODULES if m.startswith("chalicelib.aws.")]
    assert len(adapters) >= 8
    for module in adapters:
        outside = {t for t in _imports(MODULES[module]) if _unit(t) not in BASE | {"aws"}}
        assert outside == set(), f"{module} imports {sorted(outside)}"


def test_there_are_no_import_cycles_between_modules():
    graph = {m: {t for t in _imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checks_see_every_feature_package():
    # a layer test that found no modules would pass on anything
    assert {_unit(m) for m in MODULES if m.count(".") >= 2} >= set(FEATURES) | {"aws", "api", "handlers"}
