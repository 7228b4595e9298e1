"""The model comes from the data (DESIGN "Matching model"): comparisons and rules from the columns.

`profile_columns` measures every attribute column of a records table (how often it is filled, how
many values it has, which values are shared by far more records than a person could be);
`plan_model` turns the profiles and the attributes' kinds into a `ModelPlan`: one comparison per
attribute suited to its kind (the address as ONE comparison of street, postcode and city), the
candidate blocking rules for prediction (most specific first; `select_blocking_rules` keeps them
within a comparison budget), the blocking rules for EM and for the prior, and a line for every
column left out. Every level uses only SQL the OnlineScorer reproduces exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
import sqlglot
from splink import SettingsCreator, block_on

from identity_graph.attributes import Kind

__all__ = [
    "ColumnProfile",
    "ModelPlan",
    "RuleCount",
    "count_rule_pairs",
    "plan_model",
    "profile_columns",
    "select_blocking_rules",
]

RESERVED = frozenset({"unique_id", "source_dataset", "match_key", "cluster", "household"})
"""Attribute names that cannot be record columns (Splink's own or the labels')."""
MIN_FILLED = 0.01
"""A column filled on fewer records than this share (and fewer than 2) is left out."""
NEAR_CONSTANT = 0.95
"""A column whose most common value has this share of its filled records is left out."""
JUNK_MIN_COUNT = 50
JUNK_SHARE = 0.01
JUNK_OVER_P99 = 10
"""A value is junk (`00000`, a shop's email) when more than JUNK_MIN_COUNT and JUNK_SHARE of the
records carry it AND more than JUNK_OVER_P99 times as many as the column's 99th-percentile value:
far more than a person could be. Junk values count as missing, in blocking and comparisons."""
NO_JUNK_KINDS = (Kind.EXACT,)
TF_KINDS = (Kind.PERSON_NAME,)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class ColumnProfile:
    column: str
    kind: Kind
    filled: int
    distinct: int
    top_share: float
    junk: tuple[str, ...] = ()

    def usable(self, n_records: int) -> str | None:
        """Why the column is left out of the model, or None when it is used."""
        if self.filled < max(2, MIN_FILLED * n_records):
            return f"filled on {self.filled} of {n_records} records"
        if self.distinct < 2:
            return "one value only"
        if self.top_share >= NEAR_CONSTANT:
            return f"nearly constant (one value on {self.top_share:.0%} of filled records)"
        return None


def profile_columns(con: duckdb.DuckDBPyConnection, table: str,
                    kinds: Mapping[str, Kind]) -> dict[str, ColumnProfile]:
    """Fill, cardinality and junk values of each column of `table` named in `kinds`."""
    out = {}
    for col, kind in kinds.items():
        q = _q(col)
        rows = con.execute(
            f"SELECT {q} AS v, count(*) AS n FROM {table} WHERE {q} IS NOT NULL GROUP BY 1"
        ).fetchall()
        counts = sorted((n for _, n in rows), reverse=True)
        sum(counts)
        junk: list[str] = []
        if kind not in NO_JUNK_KINDS and len(counts) > 1:
            n_all = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
            p99 = counts[min(len(counts) - 1, max(1, len(counts) // 100))]
            bar = max(JUNK_MIN_COUNT, JUNK_SHARE * n_all, JUNK_OVER_P99 * p99)
            junk = sorted(str(v) for v, n in rows if n > bar)
        kept = [n for v, n in rows if str(v) not in junk]
        kept_filled = sum(kept)
        out[col] = ColumnProfile(col, kind, kept_filled, len(kept),
                                 max(kept) / kept_filled if kept_filled else 0.0, tuple(junk))
    return out


@dataclass
class ModelPlan:
    """What the default model compares, and how it blocks, for the columns present."""

    comparisons: list[Any]
    explain: list[dict[str, Any]]
    left_out: dict[str, str]
    blocking_rules: list[tuple[str, ...]]
    """candidate prediction rules, each a tuple of column expressions, most specific first"""
    em_rules: list[tuple[str, ...]]
    deterministic_rules: list[tuple[str, ...]]
    tf_columns: list[str]
    junk: dict[str, list[str]] = field(default_factory=dict)
    tighten: list[str] = field(default_factory=list)
    """expressions that narrow a rule over budget, in order (`select_blocking_rules`)"""

    def settings(self, rules: Sequence[tuple[str, ...]] | None = None,
                 prior: float = 1e-4) -> SettingsCreator:
        return SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="unique_id",
            probability_two_random_records_match=prior,
            comparisons=list(self.comparisons),
            blocking_rules_to_generate_predictions=[
                block_on(*r) for r in (self.blocking_rules if rules is None else rules)],
            retain_intermediate_calculation_columns=False,
            retain_matching_columns=False,
        )


# ==== comparisons by kind ==========================================================================


def _name(col: str, first: bool, other: str | None) -> Any:
    """Exact (term frequencies), first and last name swapped (a common entry error: a form's
    fields filled the other way round; a typo allowed, Jaro-Winkler >= 0.88 both ways), then
    Jaro-Winkler >= 0.92 / 0.88 (/ 0.7 first name).

    The first-name comparison also has "a name in the other name field": one record's first name
    is the other's surname (or back) while the other field was replaced or left out, the same
    entry error half done. Only the first-name comparison has it, so that one misplaced name is
    counted once; family members share a surname, not one's first name as the other's surname.
    """
    levels = [cll.NullLevel(col), cll.ExactMatchLevel(col, term_frequency_adjustments=True)]
    if other:
        a, b = (col, other)
        levels.append(cll.CustomLevel(
            f"jaro_winkler_similarity({a}_l, {b}_r) >= 0.88 AND "
            f"jaro_winkler_similarity({a}_r, {b}_l) >= 0.88",
            label_for_charts="first and last name swapped"))
    levels += [cll.JaroWinklerLevel(col, t) for t in (0.92, 0.88)]
    if other and first:
        levels.append(cll.CustomLevel(
            f"jaro_winkler_similarity({col}_l, {other}_r) >= 0.88 OR "
            f"jaro_winkler_similarity({col}_r, {other}_l) >= 0.88",
            label_for_charts="a name in the other name field"))
    if first:
        levels.append(cll.JaroWinklerLevel(col, 0.7))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(output_column_name=col, comparison_levels=levels,
                               comparison_description=f"{col} as a person's name")


def _same_year(col: str) -> str:
    return f"substr({col}_l, 1, 4) = substr({col}_r, 1, 4)"


def _date(col: str) -> Any:
    """Exact / one typo in month or day / same year / one typo in the year / else.

    A one-character difference in the year is its own level, below "same year", so that a
    parent and a child born on the same day 30 years apart ('1950-12-28' vs '1980-12-28') is
    weighed as what the data says it is, not as a near-match. Values are ISO strings.
    """
    return cl.CustomComparison(
        output_column_name=col,
        comparison_description=f"{col} as an ISO date",
        comparison_levels=[
            cll.NullLevel(col),
            cll.ExactMatchLevel(col).configure(label_for_charts=f"same {col}"),
            cll.And(cll.DamerauLevenshteinLevel(col, 1), cll.CustomLevel(_same_year(col))).configure(
                label_for_charts="one typo in month or day"),
            cll.CustomLevel(_same_year(col), label_for_charts="same year"),
            cll.DamerauLevenshteinLevel(col, 1).configure(label_for_charts="one typo in the year"),
            cll.ElseLevel().configure(label_for_charts=f"different {col}"),
        ],
    )


def _code(col: str) -> Any:
    """An identifying code: exact, then one or two edits (Damerau: a swap counts once)."""
    return cl.DamerauLevenshteinAtThresholds(col, [1, 2])


def _text(col: str) -> Any:
    return cl.JaroWinklerAtThresholds(col, [0.9, 0.7])


def _exact(col: str) -> Any:
    return cl.ExactMatch(col)


SWAPPED_LINES_JW = 0.8
"""Address lines swapped: each line at least this Jaro-Winkler-similar to the other record's
other line (a house number on one side only still passes: '25 rosebery hill' / 'rosebery hill')."""


def _address(street: str | None, postcode: str | None, city: str | None,
             line2: str | None = None) -> Any:
    """Street, postcode and city as ONE comparison (DESIGN: they move together in a family).

    Summed separately, a shared address would be counted three times and outweigh a first-name
    and birth-date disagreement. The exact street levels carry the street's term frequency,
    based on the level's own u (there is no street-only exact level to borrow it from). With a
    second address line, lines entered the other way round (line 1 in line 2 and back, a common
    form and export error) are their own level: a household shares its lines in order.
    """
    s, p, c = street, postcode, city
    levels: list[Any] = []
    keys = [x for x in (s, p) if x] or [c]
    null = cll.And(*(cll.NullLevel(x) for x in keys)) if len(keys) > 1 else cll.NullLevel(keys[0])
    levels.append(null.configure(is_null_level=True, label_for_charts="address missing"))

    def tf(level: Any, label: str) -> Any:
        return level.configure(tf_adjustment_column=s, disable_tf_exact_match_detection=True,
                               label_for_charts=label)

    if s and p:
        levels.append(tf(cll.And(cll.ExactMatchLevel(s), cll.ExactMatchLevel(p)),
                         "same street and postcode"))
        levels.append(cll.And(cll.JaroWinklerLevel(s, 0.9), cll.ExactMatchLevel(p)).configure(
            label_for_charts="similar street, same postcode"))
    if s and c:
        levels.append(tf(cll.And(cll.ExactMatchLevel(s), cll.ExactMatchLevel(c)),
                         "same street and city"))
    if s:
        levels.append(tf(cll.ExactMatchLevel(s), "same street"))
        near = [cll.DamerauLevenshteinLevel(p, 1)] if p else []
        near += [cll.ExactMatchLevel(c)] if c else []
        if near:
            levels.append(cll.And(cll.JaroWinklerLevel(s, 0.9),
                                  cll.Or(*near) if len(near) > 1 else near[0]).configure(
                label_for_charts="similar street, near postcode or same city"))
    if s and line2:
        t = SWAPPED_LINES_JW
        levels.append(cll.CustomLevel(
            f"jaro_winkler_similarity({s}_l, {line2}_r) >= {t} AND "
            f"jaro_winkler_similarity({line2}_l, {s}_r) >= {t}",
            label_for_charts="address lines swapped"))
    if p:
        levels.append(cll.ExactMatchLevel(p).configure(label_for_charts="same postcode"))
    if s:
        levels.append(cll.JaroWinklerLevel(s, 0.9).configure(label_for_charts="similar street"))
    if c and not (s or p):
        levels.append(cll.ExactMatchLevel(c).configure(label_for_charts="same city"))
    levels.append(cll.ElseLevel().configure(label_for_charts="different address"))
    parts = ", ".join(x for x in (s, p, c) if x)
    return cl.CustomComparison(output_column_name="address",
                               comparison_description=f"{parts} compared together",
                               comparison_levels=levels)


_HOW = {
    Kind.PERSON_NAME: "name: exact (term frequencies), first and last name swapped, "
                      "Jaro-Winkler >= 0.92 / 0.88 (first name: a name in the other name field, "
                      "Jaro-Winkler >= 0.7)",
    Kind.DATE: "date: exact, one typo in month or day, same year, one typo in the year",
    Kind.CODE: "code: exact, Damerau-Levenshtein <= 1, <= 2",
    Kind.TEXT: "text: exact, Jaro-Winkler >= 0.9 / 0.7",
    Kind.EXACT: "exact match",
}


# ==== the plan =====================================================================================


def _first(profiles: Mapping[str, ColumnProfile], kind: Kind, preferred: str) -> str | None:
    if preferred in profiles and profiles[preferred].kind is kind:
        return preferred
    return next((c for c, p in profiles.items() if p.kind is kind), None)


def plan_model(profiles: Mapping[str, ColumnProfile], n_records: int) -> ModelPlan:
    """The default model for these columns: comparisons, candidate rules, and what was left out."""
    left_out: dict[str, str] = {}
    used: dict[str, ColumnProfile] = {}
    for col, prof in profiles.items():
        why = "reserved name" if col in RESERVED or col.startswith(("tf_", "gamma_", "bf_")) else \
            prof.usable(n_records)
        if why:
            left_out[col] = why
        else:
            used[col] = prof
    first = _first(used, Kind.PERSON_NAME, "first_name")
    last = _first({c: p for c, p in used.items() if c != first}, Kind.PERSON_NAME, "last_name")
    dob = _first(used, Kind.DATE, "date_of_birth")
    street = _first(used, Kind.ADDRESS, "street")
    postcode = _first(used, Kind.POSTCODE, "postcode")
    city = _first(used, Kind.CITY, "city")
    line2 = _first({c: p for c, p in used.items() if c != street}, Kind.ADDRESS, "address_2") \
        if street else None
    comparisons: list[Any] = []
    explain: list[dict[str, Any]] = []
    tf: list[str] = []
    address_parts = [c for c in (street, postcode, city) if c]
    for col, prof in used.items():
        if col in address_parts:
            continue
        kind = prof.kind
        if kind is Kind.PERSON_NAME:
            other = (last if col == first else first) if col in (first, last) else None
            comparisons.append(_name(col, col == first, other))
            tf.append(col)
        elif kind is Kind.DATE:
            comparisons.append(_date(col))
        elif kind is Kind.CODE:
            comparisons.append(_code(col))
        elif kind is Kind.EXACT:
            comparisons.append(_exact(col))
        else:  # text, and a second address line, postcode or city
            kind = Kind.TEXT
            comparisons.append(_text(col))
        columns = [col]
        if prof.kind is Kind.PERSON_NAME and col in (first, last) and first and last:
            columns = [first, last]  # the swapped-names level reads both
        explain.append({"comparison": col, "columns": columns, "kind": prof.kind.value,
                        "how": _HOW[kind]})
    if address_parts:
        comparisons.append(_address(street, postcode, city, line2))
        if street:
            tf.append(street)
        swapped = "address lines swapped, " if line2 else ""
        explain.append({"comparison": "address",
                        "columns": address_parts + ([line2] if line2 else []), "kind": "address",
                        "how": "one comparison: same street and postcode (street term frequencies), "
                               "similar street and postcode, same street and city, same street, "
                               f"similar street near postcode or same city, {swapped}same postcode, "
                               "similar street"})

    codes = [c for c, p in used.items() if p.kind is Kind.CODE]
    year = f"substr({dob}, 1, 4)" if dob else None
    candidates: list[tuple[str | None, ...]] = [
        *((c,) for c in codes),
        (first, last), (swapped_names(first, last) if first and last else None,),
        (first, dob), (last, dob), (last, year),
        (street, postcode), (street, city), (first, postcode), (last, postcode),
        (dob,), (postcode,), (street,), (last,), (first,),
    ]
    rules = _dedupe([r for r in candidates if all(r)])  # type: ignore[misc]
    # EM: a block on the address alone is mostly households (same surname and address, other
    # first name and birth date), which EM would learn as the match class; with the first name
    # added, family members are no longer the bulk of the pairs.
    em = [r for r in _dedupe([(dob,), (postcode, first), (street, first), (city, first),
                              (first, last), *((c,) for c in codes), (postcode,), (street,),
                              (last,), (first,)]) if all(r)]
    deterministic = [r for r in _dedupe([(first, last, dob), *((c,) for c in codes),
                                         (first, last, street, postcode)]) if all(r)]
    junk = {c: list(p.junk) for c, p in profiles.items() if p.junk and c in used}
    tighten = [x for x in (f"substr({first}, 1, 1)" if first else None, year,
                           f"substr({last}, 1, 1)" if last else None) if x]
    return ModelPlan(comparisons, explain, left_out, rules, em,  # type: ignore[arg-type]
                     deterministic, tf, junk, tighten)


def _dedupe(rules: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in rules:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def em_sessions(plan: ModelPlan) -> list[tuple[str, ...]]:
    """EM blocking rules such that every comparison is left free by at least one session."""
    columns_of = {e["comparison"]: set(e["columns"]) for e in plan.explain}
    chosen: list[tuple[str, ...]] = []
    unestimated = set(columns_of)
    for rule in plan.em_rules:
        cols = set().union(*(_columns(x) for x in rule))
        frees = {c for c in unestimated if not (columns_of[c] & cols)}
        if frees:
            chosen.append(rule)
            unestimated -= frees
        if not unestimated and len(chosen) >= 2:
            break
    return chosen


def swapped_names(first: str, last: str) -> str:
    """A blocking key that is the same for "Ann Lee" and "Lee Ann": the two names in order.

    NULL when either name is (a comparison with NULL takes the ELSE branch, and `||` with NULL is
    NULL), so records with one name are not blocked together by it. Without it, swapped names
    are a level of the model that blocking never reaches when no other field agrees exactly.
    """
    return (f"CASE WHEN {first} < {last} THEN {first} || '|' || {last} "
            f"ELSE {last} || '|' || {first} END")


def _columns(expr: str) -> set[str]:
    """The input columns an expression of a rule reads (a bare name is one, even a SQL keyword)."""
    if expr.isidentifier():
        return {expr}
    return {c.name for c in sqlglot.parse_one(expr, read="duckdb").find_all(sqlglot.exp.Column)}


# ==== cost =========================================================================================


@dataclass(frozen=True)
class RuleCount:
    rule: tuple[str, ...]
    pairs: int
    kept: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"rule": " AND ".join(self.rule), "comparisons": self.pairs, "kept": self.kept,
                "reason": self.reason}


def count_rule_pairs(con: duckdb.DuckDBPyConnection, table: str, rule: Sequence[str]) -> int:
    """Pairs an equi-join blocking rule makes on its own: Σ n(n−1)/2 over its key groups.

    Exact for the rules the builder emits (conjunctions of equalities), and computed by one
    GROUP BY, so a rule that would make a near cross-product is measured without being run.
    """
    exprs = [_q(e) if e.isidentifier() else e for e in rule]
    not_null = " AND ".join(f"{e} IS NOT NULL" for e in exprs)
    value = con.execute(
        f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) AS n FROM {table} "
        f"WHERE {not_null} GROUP BY {', '.join(exprs)})").fetchall()
    return int(value[0][0]) if value else 0


def select_blocking_rules(con: duckdb.DuckDBPyConnection, table: str,
                          rules: Sequence[Sequence[str]], budget: int,
                          tighten: Sequence[str] = ()) -> list[RuleCount]:
    """Keeps candidate rules, most specific first, while their comparisons fit `budget`.

    A rule that would overrun what is left of the budget is tightened with the first of
    `tighten` (e.g. the first name's initial) that it lacks and that makes it fit; failing that
    it is dropped (the more specific rules before it already cover its best pairs). The result
    lists each rule's count, kept or not, and the tightened rules that replaced them.
    """
    out = []
    total = 0
    chosen: set[tuple[str, ...]] = set()
    for rule in rules:
        n = count_rule_pairs(con, table, rule)
        if total + n <= budget:
            total += n
            chosen.add(tuple(rule))
            out.append(RuleCount(tuple(rule), n, True))
            continue
        out.append(RuleCount(tuple(rule), n, False,
                             f"over budget ({total + n:,} > {budget:,} comparisons)"))
        for extra in tighten:
            tighter = (*rule, extra)
            if _columns(extra) <= set().union(*(_columns(x) for x in rule)) or tighter in chosen:
                continue
            m = count_rule_pairs(con, table, tighter)
            if total + m <= budget:
                total += m
                chosen.add(tighter)
                out.append(RuleCount(tighter, m, True, f"tightened from {' AND '.join(rule)}"))
                break
    return out
