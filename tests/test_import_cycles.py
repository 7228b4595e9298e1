"""Imports between first-party modules point one way: no cycles, lazy and type-only imports included.

A function-local import or one under `if TYPE_CHECKING:` hides a cycle from Python at import
time but not from a reader: the two modules still depend on each other. So this walks the AST of
every first-party file (not tests/ or bench/) and counts every import statement it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("batch", "identity_graph", "session", "privacy", "stubs")
MODULES = ("server",)


def first_party_files() -> dict[str, Path]:
    """module name -> file, for every first-party module (a package is its `__init__`)."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    for mod in MODULES:
        out[mod] = ROOT / f"{mod}.py"
    return out


def _resolve(name: str, modules: set[str]) -> str | None:
    """`name` if it is a first-party module, else the longest first-party module it lies in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: set[str]) -> set[str]:
    """The first-party modules that `module` imports anywhere in its file.

    `from x import y` is module `x.y` when that is a module, else `x`; importing a package is
    importing its `__init__`.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.add(_resolve(alias.name, modules))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                out.add(full if full in modules else _resolve(source, modules))
    out.discard(None)
    out.discard(module)
    return out  # type: ignore[return-value]


def import_graph() -> nx.DiGraph:
    files = first_party_files()
    names = set(files)
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    for module, path in files.items():
        graph.add_edges_from((module, other) for other in imports_of(module, path, names))
    return graph


def cycles_in(graph: nx.DiGraph, package: str) -> list[list[str]]:
    """One cycle (as a path of modules) per strongly connected component that holds a module of
    `package`: every import cycle through the package shows up, each component once."""
    out = []
    for scc in nx.strongly_connected_components(graph):
        if len(scc) > 1 and any(m == package or m.startswith(package + ".") for m in scc):
            cycle = nx.find_cycle(graph.subgraph(scc))
            out.append([a for a, _ in cycle] + [cycle[-1][1]])
    return sorted(out)


def test_the_graph_sees_lazy_and_type_only_imports() -> None:
    graph = import_graph()
    assert graph.has_edge("batch.cli", "batch.relink")  # inside a function
    assert graph.has_edge("batch.report", "batch.steps.types")  # under TYPE_CHECKING
    assert graph.has_edge("batch.cli", "batch.review")  # `from batch import review`: the module
    assert graph.has_edge("batch.relink", "batch.engines")  # a package: its __init__


def test_no_import_cycles_in_batch() -> None:
    cycles = cycles_in(import_graph(), "batch")
    assert not cycles, "import cycles through batch:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_import_cycles_between_packages() -> None:
    """Packages form layers (stubs, identity_graph < session < privacy < batch < server): a cycle
    that crosses a package boundary would tie two layers together. Inside `identity_graph.store`
    a database object builds its own graph store and the store takes the database (one pair per
    backend); that pair is the one cycle left, and it stays inside the package."""
    graph = import_graph()
    crossing = [sorted(scc) for scc in nx.strongly_connected_components(graph)
                if len({m.split(".")[0] for m in scc}) > 1]
    assert not crossing, "modules of several packages importing each other in a ring:\n" + "\n".join(
        ", ".join(scc) for scc in crossing)
