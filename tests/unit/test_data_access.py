"""Data access in one place per aggregate (issue 31): in the packages below, only `store.py` talks
PynamoDB. The rules call named operations (`avatars.store.retire(tx, avatar, ...)`); they do not
import pynamodb, build conditions, update actions or queries on a model's attributes, call a model's
class methods, build an item (its keys) or pass the keywords that carry expressions.

A package joins the list once its store holds all of its data access."""
from __future__ import annotations

import ast

from tests.support.infra import ROOT
from tests.unit.test_cold_imports import NOT_AT_IMPORT, _imported_by

# The packages whose modules other than store.py must not touch PynamoDB (extend, never shorten).
DATA_ACCESS_CHECKED = ["avatars", "projects", "presets", "users", "teams", "housekeeping", "generation", "usage", "events", "sharing", "exports"]

# Condition builders and update actions of a PynamoDB attribute (`AvatarModel.status.is_in(...)`).
EXPRESSION_METHODS = {"set", "add", "remove", "delete", "append", "prepend", "exists", "does_not_exist", "is_in",
                      "startswith", "between", "contains", "is_type"}
# Class-level calls of a model or its index (`AvatarModel.by_project.query(...)`).
MODEL_CALLS = {"get", "query", "scan", "count", "batch_get", "batch_write", "get_attributes"}
# Keywords that carry expressions into PynamoDB (an instance's update, a query, a transaction's item).
EXPRESSION_KEYWORDS = {"actions", "condition", "range_key_condition", "filter_condition", "consistent_read"}
# What a rule module may take from the adapters: models and value objects as types (chalicelib.aws.models),
# transactions it decides on and reads by name (chalicelib.aws.db).
ALLOWED_FROM = {"chalicelib.aws.db": {"Transaction", "TransactionCancelled"}}


def _is_model(name: str) -> bool:
    return name.endswith("Model") and name[:1].isupper()


def _model_root(node: ast.AST) -> str | None:
    """`AvatarModel` for `AvatarModel.attributes.gender` (an attribute chain on a model class)."""
    depth = 0
    while isinstance(node, ast.Attribute):
        node, depth = node.value, depth + 1
    return node.id if depth and isinstance(node, ast.Name) and _is_model(node.id) else None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    return {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}


def data_access(source: str) -> list[str]:
    """Each place in `source` that does what only a store may do, as "line: what"."""
    tree = ast.parse(source)
    typing_only = _type_checking_nodes(tree)
    found = []

    def note(node: ast.AST, what: str) -> None:
        found.append(f"{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and id(node) not in typing_only:
            for alias in node.names:
                if alias.name.split(".")[0] == "pynamodb":
                    note(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and id(node) not in typing_only:
            if node.module.split(".")[0] == "pynamodb":
                note(node, f"imports from {node.module}")
            elif node.module == "chalicelib.aws.models":
                for alias in node.names:
                    if not (_is_model(alias.name) or alias.name.endswith("Map")):
                        note(node, f"imports the key layout ({alias.name})")
            elif node.module in ALLOWED_FROM:
                for alias in node.names:
                    if alias.name not in ALLOWED_FROM[node.module]:
                        note(node, f"imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if _model_root(operand):
                    note(node, f"builds a condition on {ast.unparse(operand)}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in EXPRESSION_METHODS | MODEL_CALLS:
                root = _model_root(func.value) or (func.value.id if isinstance(func.value, ast.Name)
                                                   and _is_model(func.value.id) else None)
                if root and (func.attr in MODEL_CALLS or isinstance(func.value, ast.Attribute)):
                    note(node, f"calls {ast.unparse(func)}")
            elif isinstance(func, ast.Name) and _is_model(func.id):
                note(node, f"builds a {func.id} item")
            elif isinstance(func, ast.Name) and func.id == "getattr" and node.args and isinstance(node.args[0], ast.Name) \
                    and _is_model(node.args[0].id):
                note(node, f"reads an attribute of {node.args[0].id} by name")
            for keyword in node.keywords:
                if keyword.arg in EXPRESSION_KEYWORDS:
                    note(node, f"passes {keyword.arg}=")
    return sorted(found, key=lambda where: int(where.split(":")[0]))


def _rule_modules():
    for package in DATA_ACCESS_CHECKED:
        for path in sorted((ROOT / "chalicelib" / package).glob("*.py")):
            if path.name != "store.py":
                yield path


def test_only_the_stores_touch_pynamodb():
    wrong = [f"{path.relative_to(ROOT)}:{where}" for path in _rule_modules() for where in data_access(path.read_text())]
    assert wrong == []


def test_every_checked_package_has_its_store():
    assert [p for p in DATA_ACCESS_CHECKED if not (ROOT / "chalicelib" / p / "store.py").is_file()] == []
    assert len(list(_rule_modules())) >= 10  # a check that found no modules would pass on anything


def test_the_check_finds_each_kind_of_data_access():
    source = """
from pynamodb.exceptions import DoesNotExist
import pynamodb.models
from chalicelib.aws.models import META, AvatarModel, PersonaMap, avatar_pk
from chalicelib.aws.db import Transaction, condition_failed
condition = AvatarModel.status == "ready"
actions = [AvatarModel.name.set("x"), AvatarModel.usage_count.add(1), AvatarModel.attributes.gender.is_in("f")]
AvatarModel.get("pk", "META")
AvatarModel.by_project.query("pk")
item = AvatarModel("pk", "META")
counter = getattr(UserStatsModel, "total_avatars")
avatar.update(actions=[], condition=None)
"""
    found = data_access(source)
    assert [line.split(":")[0] for line in found] == [
        "2", "3", "4", "4", "5", "6", "7", "7", "7", "8", "9", "10", "11", "12", "12"], found
    assert data_access("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pynamodb.models import Model\n"
                       "x = item.sk.startswith('P#') and avatar.status == 'ready'\nstorage.delete([key])\n") == []


def test_the_stores_load_no_heavy_library_and_no_rules_and_the_app_loads_no_store():
    stores = [f"chalicelib.{p}.store" for p in DATA_ACCESS_CHECKED]
    loaded = _imported_by("\n".join(f"import {m}" for m in stores))
    heavy = {m for m in NOT_AT_IMPORT if not m.startswith("chalicelib.")}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
    rules = {m for m in loaded if m.count(".") == 2 and m.split(".")[1] in DATA_ACCESS_CHECKED and m not in stores}
    assert rules == set()
    assert sorted(m for m in _imported_by("import app") if m.endswith(".store")) == []
