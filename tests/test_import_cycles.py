"""No two gankit modules depend on each other, directly or around a loop.

The imports are those tests/test_layers.py reads (at the top of a file or inside a
function). A package's ``__init__.py`` is left out: it gathers its submodules' names, so
``from gankit.data import x`` leads through it without a real dependency loop.
"""
from __future__ import annotations

from tests.test_layers import ROOT, gankit_imports, module_name


def import_graph() -> dict[str, set[str]]:
    packages = {module_name(p) for p in ROOT.rglob("__init__.py")}
    graph = {}
    for path in ROOT.rglob("*.py"):
        module = module_name(path)
        if module not in packages:
            graph[module] = {m for m in gankit_imports(path) if m != module and m not in packages}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The loops of ``graph``: a depth-first search reports each back edge's path."""
    state: dict[str, str] = {}
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_cycle_finder_finds_a_loop():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_gankit_modules_import_each_other():
    found = cycles(import_graph())
    assert not found, "import loops:\n" + "\n".join("  " + " -> ".join(c) for c in found)
