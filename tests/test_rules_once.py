"""Each customer rule is written once (DESIGN.md, "The customer": "These rules are one piece of
code"): read from the source, so that a second copy in the engine, ingest, the relink or a
batch tool fails here rather than drifting apart unnoticed."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("identity_graph", "batch", "session")


def _sources() -> dict[str, ast.Module]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "_pb2" not in p.name]
    files.append(ROOT / "server.py")
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text(), str(p)) for p in files}


SOURCES = _sources()
RULES, PRIMITIVES = "identity_graph/rules.py", "identity_graph/guardrails.py"
IDS = "identity_graph/components.py"
RECORDS = "identity_graph/records.py"

# rule -> where it is written
DEFINED = {
    "decide": RULES,  # the one entry point: order, passes, components, ids
    "blocked_violation": RULES,  # a blocked value never links
    "_junk_end": RULES,  # junk found, not listed
    "_two_people_seen": RULES,  # a value whose own sightings show two people
    "_shareable": RULES,  # which end of a household bridge is set apart
    "_pass": RULES,  # limits, chain guard, household
    "limit_violation": PRIMITIVES,  # per-type limits
    "Similarity": PRIMITIVES,  # the one measure of "clearly different people"
    "Profile": PRIMITIVES,
    "record_of": RECORDS,  # an identifier's record, online and in the batch: one SQL policy
    "best_values_sql": RECORDS,
    "sightings": PRIMITIVES,
    "is_blocked": "identity_graph/config.py",  # the block list's test
    "new_customer_id": IDS,  # stable ids: random, no personal data
    "assign_ids_incremental": IDS,
    "assign_ids_by_overlap": IDS,
}

# a call of one of these outside `allowed` applies a rule around `decide`
CALLED_ONLY_IN = {
    "limit_violation": {RULES},
    "clearly_different": {RULES},
    "two_people": {RULES},
    "people_among": {RULES},
    "assign_ids_incremental": {RULES},
    "assign_ids_by_overlap": {RULES},
    "SequenceMatcher": {PRIMITIVES},
}


def _definitions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, tree in SOURCES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                out.setdefault(node.name, []).append(path)
    return out


def _called(name: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for path, tree in SOURCES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                if (isinstance(f, ast.Name) and f.id == name) or (
                        isinstance(f, ast.Attribute) and f.attr == name):
                    out[path] += 1
    return out


def test_each_rule_is_defined_once_where_it_belongs() -> None:
    defined = _definitions()
    wrong = {name: defined.get(name, []) for name, where in DEFINED.items()
             if defined.get(name, []) != [where]}
    assert not wrong, f"a rule missing or written twice: {wrong}"


def test_rules_are_applied_only_through_decide() -> None:
    stray = {name: sorted(set(_called(name)) - allowed) for name, allowed in CALLED_ONLY_IN.items()}
    assert not any(stray.values()), f"a rule applied around identity_graph.rules.decide: {stray}"
    callers = set(_called("decide"))
    # the relink decides through `batch.regions` (the whole graph, or each region on Spark)
    assert {"identity_graph/engine/_core.py", "batch/ingest.py", "batch/regions.py"} <= callers
    assert callers <= {"identity_graph/engine/_core.py", "batch/ingest.py", "batch/regions.py",
                       "batch/renormalise.py"}, callers


def test_violations_of_the_rules_are_made_only_by_the_rules() -> None:
    kinds = {"blocked", "limit", "generic", "junk", "chain"}
    made: Counter[str] = Counter()
    for path, tree in SOURCES.items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "Violation" and node.args
                    and isinstance(node.args[0], ast.Constant) and node.args[0].value in kinds):
                made[path] += 1
    assert set(made) == {RULES}, made


def test_one_similarity_measure_and_one_block_list() -> None:
    """No Jaro-Winkler or difflib threshold outside the matching model and the primitives (the
    relink once judged "generic" by SQL Jaro-Winkler < 0.7), and the block list compiled once."""
    for path, tree in SOURCES.items():
        text = " ".join(_code_words(tree)).lower()
        # the Spark engine's UDFs are the model's similarity functions on Spark (`matching.dialect`)
        if not path.startswith(("identity_graph/matching/", "batch/engines/")):
            assert "jaro" not in text, path
        if path != PRIMITIVES:
            assert "difflib" not in text, path
        if path != "identity_graph/config.py":
            assert "fnmatch" not in text, path


def _code_words(tree: ast.Module) -> list[str]:
    """Names, imports and string constants (SQL included); documentation (a string standing as
    a statement of its own) left out."""
    docs = {id(n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    words = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            words.append(n.id)
        elif isinstance(n, ast.Attribute):
            words.append(n.attr)
        elif isinstance(n, ast.alias):
            words.append(n.name)
        elif isinstance(n, ast.ImportFrom):
            words.append(n.module or "")
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            words.append(n.value)
    return words


def test_customer_ids_are_made_in_one_place() -> None:
    """A customer id is `new_customer_id()` (random) or an existing one: no string built from
    "cus_" anywhere else (the nightly ids were once hashes of a member key)."""
    built: list[str] = []
    for path, tree in SOURCES.items():
        for node in ast.walk(tree):
            parts = (node.values if isinstance(node, ast.JoinedStr)
                     else [node.left] if isinstance(node, ast.BinOp) else [])
            if parts and isinstance(parts[0], ast.Constant) and str(parts[0].value).startswith("cus_"):
                built.append(path)
    assert built == [IDS], built
