"""Import layers: `privacy` sits above `identity_graph` and `session`, and `session` above
`identity_graph`; no module of a lower layer imports a higher one, in any form (module level,
inside a function, under `TYPE_CHECKING`, relative, or `importlib.import_module("...")`)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(text: str, package: str) -> Iterator[tuple[int, str, str]]:
    """(line, imported module, statement) for every import in `text`, a module of `package`
    (relative imports resolved against it)."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ast.unparse(node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                target = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield node.lineno, target, ast.unparse(node)
            for alias in node.names:  # `from x import y` may import the module x.y
                yield node.lineno, f"{target}.{alias.name}", ast.unparse(node)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")):
            yield node.lineno, node.args[0].value, ast.unparse(node)


def _package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parent.parts)


def _violations(packages: tuple[str, ...], forbidden: str) -> list[str]:
    """`file:line: statement` for every import of `forbidden` (or below it) in `packages`."""
    found = set()
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, target, statement in _imports(path.read_text(), _package_of(path)):
                if target == forbidden or target.startswith(forbidden + "."):
                    found.add((str(path.relative_to(ROOT)), line, statement))
    return [f"{path}:{line}: {statement}" for path, line, statement in sorted(found)]


def test_identity_graph_and_session_do_not_import_privacy() -> None:
    assert _violations(("identity_graph", "session"), "privacy") == []


def test_identity_graph_does_not_import_session() -> None:
    assert _violations(("identity_graph",), "session") == []


def test_the_import_walker_finds_every_form() -> None:
    """The check itself: a walker that missed one form of import would pass on anything."""
    text = (
        "from typing import TYPE_CHECKING\n"
        "import privacy.service\n"
        "if TYPE_CHECKING:\n"
        "    from privacy.store import PrivacyStore\n"
        "def f():\n"
        "    from privacy import service\n"
        "    import importlib\n"
        "    return importlib.import_module('privacy.servicer')\n"
        "from .. import privacy\n"
        "from ..session.model import Turn\n"
        "import stubs.session.v1\n"
    )
    found = {(line, target) for line, target, _ in _imports(text, "identity_graph.store")}
    lines = sorted({line for line, target in found if target.split(".")[0] == "privacy"})
    assert lines == [2, 4, 6, 8]
    assert (9, "identity_graph.privacy") in found  # relative: a sibling module, not the layer
    assert (10, "identity_graph.session.model") in found
    assert not any(target.split(".")[0] == "session" for _, target in found)
