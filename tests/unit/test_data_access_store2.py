"""Data access in one place per aggregate (issue 31): in a checked package only `store.py` talks to
DynamoDB. The rules call named operations on it (`store.claim(...)`, `store.record_image(tx, ...)`);
no other module imports PynamoDB, touches a model class (expressions, queries, gets, batch gets,
decoding), passes conditions or actions, or calls the DynamoDB client.

Checked on the source (every import and call, at module level or inside a function). A module may
still name a model in a type hint under TYPE_CHECKING, and join a transaction it opens
(`chalicelib.aws.db.Transaction`, reasons read by name through `TransactionCancelled`)."""
from __future__ import annotations

import ast

from tests.support.infra import ROOT

LIB = ROOT / "chalicelib"
CHECKED = ["generation", "usage", "events"]

# What a rule module may take from the adapters: a transaction it opens and the refusal it reads by name.
DB_ALLOWED = {"Transaction", "TransactionCancelled"}
# Keyword arguments only PynamoDB's and the client's data calls take.
DATA_KEYWORDS = {"actions", "condition", "range_key_condition", "filter_condition", "consistent_read",
                 "last_evaluated_key", "ConditionExpression", "UpdateExpression", "KeyConditionExpression",
                 "FilterExpression", "RequestItems", "TransactItems"}
# Methods of PynamoDB models and of the DynamoDB client that read or write the table.
DATA_METHODS = {"query", "scan", "batch_get", "batch_write", "refresh", "from_raw_data", "get_item", "put_item",
                "update_item", "delete_item", "batch_get_item", "batch_write_item", "transact_write_items",
                "transact_get_items"}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    return {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}


def _model_names(tree: ast.AST) -> set[str]:
    """Names bound to a class of chalicelib.aws.models (or anything named …Model)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "chalicelib.aws.models":
            names |= {a.asname or a.name for a in node.names if a.name[:1].isupper()}
    return names


def _store_names(tree: ast.AST) -> set[str]:
    """Names bound to a store module (`from chalicelib.generation import store`, `… store as user_store`)."""
    return {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("chalicelib.") for a in node.names if a.name == "store"}


def violations(source: str, where: str = "<source>") -> list[str]:
    """Every place `source` reaches the table other than through a store."""
    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    models = _model_names(tree)
    stores = _store_names(tree)
    found = []

    def at(node: ast.AST, what: str) -> None:
        found.append(f"{where}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "pynamodb" or alias.name == "chalicelib.aws.models":
                    at(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "pynamodb":
                at(node, f"imports {node.module}")
            elif node.module == "chalicelib.aws.models":
                at(node, "imports the models (only store.py does; type hints go under TYPE_CHECKING)")
            elif node.module == "chalicelib.aws.db":
                extra = {a.name for a in node.names} - DB_ALLOWED
                if extra:
                    at(node, f"imports data access helpers {sorted(extra)} from chalicelib.aws.db")
            elif node.module == "chalicelib.aws" and any(a.name == "models" for a in node.names):
                at(node, "imports the models")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                node.value.id in models or node.value.id.endswith("Model")):
            at(node, f"uses {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call):
            keywords = {k.arg for k in node.keywords if k.arg} & DATA_KEYWORDS
            if keywords:
                at(node, f"passes {sorted(keywords)}")
            if isinstance(node.func, ast.Attribute) and node.func.attr in DATA_METHODS and not (
                    isinstance(node.func.value, ast.Name) and node.func.value.id in stores):
                at(node, f"calls .{node.func.attr}()")
            if isinstance(node.func, ast.Name) and (node.func.id in models or node.func.id.endswith("Model")):
                at(node, f"builds an item {node.func.id}(…)")
    return found


def _modules(package: str) -> list:
    return sorted(p for p in (LIB / package).glob("*.py") if p.name != "store.py")


def test_only_the_store_of_a_checked_package_reaches_the_table():
    wrong = []
    for package in CHECKED:
        for path in _modules(package):
            wrong += violations(path.read_text(), str(path.relative_to(ROOT)))
    assert wrong == []


def test_every_checked_package_has_a_store_whose_operations_say_their_access_pattern():
    for package in CHECKED:
        path = LIB / package / "store.py"
        assert path.exists(), f"chalicelib/{package} has no store.py"
        tree = ast.parse(path.read_text())
        public = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
        assert len(public) >= 4, package
        undocumented = [n.name for n in public if not ast.get_docstring(n)
                        and not n.name.endswith(("_pk", "_sk"))]
        assert undocumented == [], f"{package}/store.py: {undocumented}"


def test_the_check_sees_expressions_queries_and_client_calls():
    # a check that found nothing would pass on anything
    source = '''
from typing import TYPE_CHECKING
from pynamodb.exceptions import UpdateError
from chalicelib.aws.db import Transaction, query_page
from chalicelib.aws.models import GenerationModel
from chalicelib.generation import store
if TYPE_CHECKING:
    from chalicelib.aws.models import AvatarModel

def f(generation, tx, ddb):
    generation.update(actions=[GenerationModel.status.set("done")])
    tx.update("generation", generation, actions=[], condition=None)
    GenerationModel.get("pk", "META")
    ddb.put_item(TableName="t", Item={})
    GenerationModel("pk", "META")
    avatar: AvatarModel = None
    store.refresh(generation)
'''
    found = "\n".join(violations(source))
    for expected in ("imports pynamodb.exceptions", "['query_page']", "imports the models",
                     "uses GenerationModel.status", "passes ['actions']", "passes ['actions', 'condition']",
                     "uses GenerationModel.get", "calls .put_item()", "builds an item GenerationModel"):
        assert expected in found, expected
    assert "AvatarModel" not in found  # a type hint under TYPE_CHECKING is not data access
    assert ".refresh()" not in found  # a named operation of a store is the way in


# The generation store's operations that change a job's status: only jobs.py (the job's rules) calls them.
STATUS_WRITES = {"claim", "release", "hand_on", "abandon", "end", "requeue"}


def test_only_jobs_changes_a_job_status():
    callers = set()
    for path in sorted(LIB.rglob("*.py")):
        if "_botocore_data" in path.parts or path == LIB / "generation" / "store.py":
            continue
        tree = ast.parse(path.read_text())
        generation_stores = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                             and node.module == "chalicelib.generation" for a in node.names if a.name == "store"}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in generation_stores
                    and node.func.attr in STATUS_WRITES):
                callers.add(str(path.relative_to(LIB)))
    assert callers == {"generation/jobs.py"}
