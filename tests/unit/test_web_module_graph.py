"""The page's ES modules (web/*.js) import each other without a cycle.

A cycle works in the browser only by luck of evaluation order (a module can run before the one it
imports has defined its exports), and it makes the page impossible to read one module at a time."""
from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"

# Static imports (single or multi-line), re-exports and dynamic imports of a sibling module.
_IMPORT = re.compile(r"""(?:^|;)\s*(?:import|export)\b[^"';]*?\bfrom\s*["'](\./[^"']+)["']"""
                     r"""|(?:^|;)\s*import\s*["'](\./[^"']+)["']"""
                     r"""|\bimport\(\s*["'](\./[^"']+)["']\s*\)""", re.M)


def imports_of(source: str) -> set[str]:
    return {Path(next(g for g in m.groups() if g)).name for m in _IMPORT.finditer(source)}


def module_graph(folder: Path) -> dict[str, set[str]]:
    return {path.name: imports_of(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.js"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, …, a], or None when the graph is acyclic (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_parser_reads_every_form_of_import_the_page_uses():
    source = '''import { a } from "./one.js";
import {
  b,
  c } from './two.js';
import * as three from "./three.js";
import "./four.js";
export { d } from "./five.js";
const six = () => import("./six.js");
import { e } from "https://example.com/remote.js";
'''
    assert imports_of(source) == {"one.js", "two.js", "three.js", "four.js", "five.js", "six.js"}


def test_the_cycle_finder_finds_direct_and_indirect_cycles():
    assert find_cycle({"a.js": {"b.js"}, "b.js": {"a.js"}}) == ["a.js", "b.js", "a.js"]
    assert find_cycle({"a.js": {"b.js"}, "b.js": {"c.js"}, "c.js": {"a.js"}}) == ["a.js", "b.js", "c.js", "a.js"]
    assert find_cycle({"a.js": {"b.js", "c.js"}, "b.js": {"c.js"}, "c.js": set()}) is None


def test_the_page_modules_import_each_other_without_a_cycle():
    graph = module_graph(WEB)
    assert "app.js" in graph and graph["app.js"], "web/app.js and its imports were not found"
    for module, targets in graph.items():
        missing = targets - graph.keys()
        assert not missing, f"web/{module} imports modules that do not exist: {sorted(missing)}"
    assert find_cycle(graph) is None, f"import cycle among web/*.js: {' → '.join(find_cycle(graph))}"
