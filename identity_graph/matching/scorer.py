"""Online scoring in Python: Splink's predictions for 1 record × N candidates, no database.

The model's SQL conditions are compiled once (with sqlglot, which Splink already depends on)
into Python closures over a small, exactly reproduced subset of DuckDB SQL. Anything outside
that subset is rejected when the scorer is built, never approximated at scoring time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any

import sqlglot
from rapidfuzz.distance import DamerauLevenshtein as _DamerauLevenshtein
from rapidfuzz.distance import Jaro as _Jaro
from rapidfuzz.distance import Levenshtein as _Levenshtein
from sqlglot import exp

from identity_graph.matching.dialect import model_for
from identity_graph.matching.model import MatchModel
from identity_graph.model import AttributeMatch

__all__ = [
    "ComparisonScore",
    "OnlineScorer",
    "PairScore",
    "UnsupportedModel",
    "blocking_rule_parts",
    "damerau_levenshtein",
    "jaro_similarity",
    "jaro_winkler_similarity",
    "levenshtein",
    "py_damerau_levenshtein",
    "py_jaro_similarity",
    "py_jaro_winkler_similarity",
    "py_levenshtein",
]

_M_U_CLAMP_MIN = 1e-300  # splink.internals.comparison_level.M_U_CLAMP_MIN
_KEY_SEPARATOR = "\x1f"


class UnsupportedModel(ValueError):
    """The model uses SQL the online scorer cannot reproduce exactly."""


# --- string functions, as DuckDB computes them (on Unicode code points) --------------------
# rapidfuzz (C++) implements the algorithms DuckDB uses; tests/test_scorer.py checks every one
# against DuckDB bit for bit. DuckDB's Jaro of an empty string is 0.0 (rapidfuzz says 1.0 for
# two empty strings), so empties are answered here.


def jaro_similarity(s1: str, s2: str) -> float:
    """DuckDB's `jaro_similarity`: 0.0 when either string is empty."""
    if not s1 or not s2:
        return 0.0
    return _Jaro.similarity(s1, s2)


def jaro_winkler_similarity(s1: str, s2: str) -> float:
    """DuckDB's `jaro_winkler_similarity`: prefix weight 0.1, prefix ≤ 4, boost above 0.7.

    The Jaro part is rapidfuzz's; the Winkler step is done here, rounded once (`_fma`) as
    DuckDB's build does: rapidfuzz's own JaroWinkler rounds twice and differs from DuckDB in the
    last bit on some pairs (measured: tests/test_scorer.py), which a threshold can turn into a
    different level.
    """
    sim = jaro_similarity(s1, s2)
    if sim > 0.7:
        prefix = 0
        for a, b in zip(s1[:4], s2[:4], strict=False):
            if a != b:
                break
            prefix += 1
        if prefix:
            sim = _fma(prefix * 0.1, 1.0 - sim, sim)
    return sim


def levenshtein(s1: str, s2: str) -> int:
    """DuckDB's `levenshtein` (insert, delete, substitute)."""
    return int(_Levenshtein.distance(s1, s2))


def damerau_levenshtein(s1: str, s2: str) -> int:
    """DuckDB's `damerau_levenshtein`: unrestricted (Lowrance-Wagner), so 'ca'→'abc' is 2."""
    return int(_DamerauLevenshtein.distance(s1, s2))


# --- pure-Python references (what rapidfuzz is tested against; bench/bench_scorer.py "before") ---


def py_jaro_similarity(s1: str, s2: str) -> float:
    """DuckDB's `jaro_similarity` (rapidfuzz's algorithm): 0.0 when either string is empty."""
    # rapidfuzz makes P the shorter string and walks T, matching each T character to the
    # first unmatched P character inside the window; ties in length keep s1 as P.
    p, t = (s2, s1) if len(s1) > len(s2) else (s1, s2)
    lp, lt = len(p), len(t)
    if lp == 0 or lt == 0:
        return 0.0
    window = max(lt // 2 - 1, 0)
    p_flags = [False] * lp
    t_matched: list[str] = []
    for j, c in enumerate(t):
        lo = j - window if j > window else 0
        hi = j + window + 1 if j + window + 1 < lp else lp
        for i in range(lo, hi):
            if not p_flags[i] and p[i] == c:
                p_flags[i] = True
                t_matched.append(c)
                break
    m = len(t_matched)
    if m == 0:
        return 0.0
    p_matched = [p[i] for i in range(lp) if p_flags[i]]
    transpositions = sum(1 for a, b in zip(p_matched, t_matched, strict=True) if a != b) // 2
    return (m / lp + m / lt + (m - transpositions) / m) / 3.0


def py_jaro_winkler_similarity(s1: str, s2: str) -> float:
    """DuckDB's `jaro_winkler_similarity`: prefix weight 0.1, prefix ≤ 4, boost above 0.7."""
    sim = py_jaro_similarity(s1, s2)
    if sim > 0.7:
        prefix = 0
        for a, b in zip(s1[:4], s2[:4], strict=False):
            if a != b:
                break
            prefix += 1
        if prefix:
            sim = _fma(prefix * 0.1, 1.0 - sim, sim)
    return sim


def _fma(x: float, y: float, z: float) -> float:
    """x·y + z rounded once. DuckDB's build contracts the Winkler step into an FMA; plain
    Python arithmetic rounds twice and differs from it in the last bit (tested against DuckDB)."""
    fma = getattr(math, "fma", None)  # Python >= 3.13
    if fma is not None:
        return float(fma(x, y, z))
    return float(Fraction(x) * Fraction(y) + Fraction(z))


def py_levenshtein(s1: str, s2: str) -> int:
    """DuckDB's `levenshtein` (insert, delete, substitute)."""
    if len(s1) < len(s2):
        s1, s2 = s2, s1
    prev = list(range(len(s2) + 1))
    for i, a in enumerate(s1, 1):
        cur = [i]
        for j, b in enumerate(s2, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1]


def py_damerau_levenshtein(s1: str, s2: str) -> int:
    """DuckDB's `damerau_levenshtein`: unrestricted (Lowrance-Wagner), so 'ca'→'abc' is 2."""
    n1, n2 = len(s1), len(s2)
    big = n1 + n2
    last_row: dict[str, int] = {}
    d = [[0] * (n2 + 2) for _ in range(n1 + 2)]
    d[0][0] = big
    for i in range(n1 + 1):
        d[i + 1][0] = big
        d[i + 1][1] = i
    for j in range(n2 + 1):
        d[0][j + 1] = big
        d[1][j + 1] = j
    for i in range(1, n1 + 1):
        last_col = 0
        for j in range(1, n2 + 1):
            k = last_row.get(s2[j - 1], 0)
            m = last_col
            if s1[i - 1] == s2[j - 1]:
                cost = 0
                last_col = j
            else:
                cost = 1
            d[i + 1][j + 1] = min(
                d[i][j] + cost,
                d[i + 1][j] + 1,
                d[i][j + 1] + 1,
                d[k][m] + (i - k - 1) + 1 + (j - m - 1),
            )
        last_row[s1[i - 1]] = i
    return d[n1 + 1][n2 + 1]


# --- SQL subset compiler ----------------------------------------------------------------------

Row = Mapping[str, Any]
Expr = Callable[[Row, Row], Any]

_FUNCTIONS_2: dict[str, Callable[[str, str], Any]] = {
    "jaro_winkler_similarity": jaro_winkler_similarity,
    "jaro_similarity": jaro_similarity,
    "levenshtein": levenshtein,
    "damerau_levenshtein": damerau_levenshtein,
}
_COMPARE: dict[type[exp.Expression], Callable[[Any, Any], bool]] = {
    exp.EQ: lambda a, b: a == b,
    exp.NEQ: lambda a, b: a != b,
    exp.GT: lambda a, b: a > b,
    exp.GTE: lambda a, b: a >= b,
    exp.LT: lambda a, b: a < b,
    exp.LTE: lambda a, b: a <= b,
}


def _column_ref(node: exp.Column) -> tuple[str, str]:
    """(side, input column) for `first_name_l` (levels) or `l.first_name` (blocking rules)."""
    name = node.name
    table = node.table
    if table in ("l", "r"):
        return table, name
    if name.endswith("_l"):
        return "l", name[:-2]
    if name.endswith("_r"):
        return "r", name[:-2]
    raise UnsupportedModel(f"column {node.sql()} is neither left nor right")


def _compile(node: exp.Expression) -> Expr:
    """Compiles a DuckDB SQL expression to `f(left, right)`; None stands for NULL."""
    if isinstance(node, exp.Paren):
        return _compile(node.this)
    if isinstance(node, exp.Column):
        side, col = _column_ref(node)
        if side == "l":
            return lambda left, right: left.get(col)
        return lambda left, right: right.get(col)
    if isinstance(node, exp.Literal):
        if node.is_string:
            text = node.this
            return lambda left, right: text
        value = float(node.this) if any(c in node.this for c in ".eE") else int(node.this)
        return lambda left, right: value
    if isinstance(node, exp.Null):
        return lambda left, right: None
    if isinstance(node, exp.Boolean):
        truth = bool(node.this)
        return lambda left, right: truth
    if isinstance(node, exp.And):
        a, b = _compile(node.this), _compile(node.expression)

        def _and(left: Row, right: Row) -> bool | None:
            x = a(left, right)
            if x is False:
                return False
            y = b(left, right)
            if y is False:
                return False
            return None if x is None or y is None else True

        return _and
    if isinstance(node, exp.Or):
        a, b = _compile(node.this), _compile(node.expression)

        def _or(left: Row, right: Row) -> bool | None:
            x = a(left, right)
            if x is True:
                return True
            y = b(left, right)
            if y is True:
                return True
            return None if x is None or y is None else False

        return _or
    if isinstance(node, exp.Not):
        a = _compile(node.this)

        def _not(left: Row, right: Row) -> bool | None:
            x = a(left, right)
            return None if x is None else not x

        return _not
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null):
            raise UnsupportedModel(f"unsupported IS: {node.sql()}")
        a = _compile(node.this)
        return lambda left, right: a(left, right) is None
    if type(node) in _COMPARE:
        op = _COMPARE[type(node)]
        a, b = _compile(node.this), _compile(node.expression)

        def _cmp(left: Row, right: Row) -> bool | None:
            x = a(left, right)
            if x is None:
                return None
            y = b(left, right)
            if y is None:
                return None
            return op(x, y)

        return _cmp
    if isinstance(node, exp.Substring):
        start, length = node.args.get("start"), node.args.get("length")
        if not (isinstance(start, exp.Literal) and isinstance(length, exp.Literal)):
            raise UnsupportedModel(f"substring needs literal bounds: {node.sql()}")
        s0, n = int(start.this), int(length.this)
        if s0 < 1 or n < 0:
            raise UnsupportedModel(f"substring needs start >= 1: {node.sql()}")
        a = _compile(node.this)

        def _substr(left: Row, right: Row) -> str | None:
            x = a(left, right)
            return None if x is None else x[s0 - 1 : s0 - 1 + n]

        return _substr
    if isinstance(node, exp.DPipe):  # `a || b`: NULL when either is, as in DuckDB and Spark
        a, b = _compile(node.this), _compile(node.expression)

        def _concat(left: Row, right: Row) -> str | None:
            x = a(left, right)
            if x is None:
                return None
            y = b(left, right)
            return None if y is None else f"{x}{y}"

        return _concat
    if isinstance(node, exp.Case) and node.this is None:  # searched CASE; NULL is not true
        branches = [(_compile(i.this), _compile(i.args["true"])) for i in node.args["ifs"]]
        default = node.args.get("default")
        otherwise = _compile(default) if default is not None else (lambda left, right: None)

        def _case(left: Row, right: Row) -> Any:
            for cond, value in branches:
                if cond(left, right) is True:
                    return value(left, right)
            return otherwise(left, right)

        return _case
    fn_name, args = _function(node)
    if fn_name in _FUNCTIONS_2 and len(args) == 2:
        fn = _FUNCTIONS_2[fn_name]
        a, b = _compile(args[0]), _compile(args[1])

        def _call(left: Row, right: Row) -> Any:
            x = a(left, right)
            if x is None:
                return None
            y = b(left, right)
            if y is None:
                return None
            return fn(x, y)

        return _call
    raise UnsupportedModel(f"unsupported SQL in model: {node.sql(dialect='duckdb')}")


def _function(node: exp.Expression) -> tuple[str, list[exp.Expression]]:
    if isinstance(node, exp.JarowinklerSimilarity):
        return "jaro_winkler_similarity", [node.this, node.expression]
    if isinstance(node, exp.Levenshtein):
        extra = [k for k in ("ins_cost", "del_cost", "sub_cost", "max_dist") if node.args.get(k)]
        if extra:
            return "", []
        return "levenshtein", [node.this, node.expression]
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower(), list(node.expressions)
    return "", []


def _parse(sql: str) -> exp.Expression:
    try:
        return sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise UnsupportedModel(f"cannot parse model SQL {sql!r}") from e


# --- compiled model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Level:
    label: str
    gamma: int
    condition: Expr | None  # None: ELSE
    is_null: bool
    match_weight: float
    tf_column: str | None
    tf_weight: float
    tf_min_u: float
    log2_u_base: float


@dataclass(frozen=True)
class _Comparison:
    name: str
    levels: tuple[_Level, ...]
    has_tf: bool


@dataclass(frozen=True)
class ComparisonScore:
    """One comparison's part of a pair's score, for Explain and waterfall charts.

    `bits` = `level_match_weight` + `tf_adjustment`, the comparison's contribution to the
    pair's match weight (log2 Bayes factor).
    """

    comparison: str
    level: str
    comparison_vector_value: int
    level_match_weight: float
    tf_adjustment: float
    bits: float


@dataclass(frozen=True)
class PairScore:
    """Splink's prediction for one pair, with its waterfall."""

    unique_id_l: Any
    unique_id_r: Any
    match_weight: float
    match_probability: float
    prior_match_weight: float
    comparisons: tuple[ComparisonScore, ...]


def _level_weight(level: dict[str, Any]) -> float:
    """Splink's `ComparisonLevel._match_weight`: log2(m/u) with both clamped; null levels 0."""
    if level.get("is_null_level"):
        return 0.0
    m, u = level.get("m_probability"), level.get("u_probability")
    if m is None or u is None:
        raise UnsupportedModel(
            f"level {level.get('label_for_charts') or level['sql_condition']!r} is not trained"
        )
    return math.log2(max(float(m), _M_U_CLAMP_MIN) / max(float(u), _M_U_CLAMP_MIN))


def _exact_match_column(sql: str) -> str | None:
    """`x_l = x_r` → `x`, as Splink's TF exact-match detection needs it; else None."""
    node = _parse(sql)
    while isinstance(node, exp.Paren):
        node = node.this
    if not isinstance(node, exp.EQ):
        return None
    a, b = node.this, node.expression
    if not (isinstance(a, exp.Column) and isinstance(b, exp.Column)):
        return None
    (sa, ca), (sb, cb) = _column_ref(a), _column_ref(b)
    return ca.lower() if ca == cb and {sa, sb} == {"l", "r"} else None


def _compile_comparison(cc: dict[str, Any]) -> _Comparison:
    raw_levels = cc["comparison_levels"]
    n_non_null = sum(1 for lv in raw_levels if not lv.get("is_null_level"))
    levels: list[_Level] = []
    gamma = n_non_null  # Splink numbers non-null levels from n-1 down to 0; null is -1
    for lv in raw_levels:
        sql = lv["sql_condition"]
        is_else = sql.strip().upper() == "ELSE"
        is_null = bool(lv.get("is_null_level"))
        if is_null:
            g = -1
        else:
            gamma -= 1
            g = gamma
        tf_col = lv.get("tf_adjustment_column")
        tf_weight = float(lv.get("tf_adjustment_weight", 1.0))
        log2_u_base = 0.0
        if tf_col and not is_null and not is_else and tf_weight != 0:
            if lv.get("disable_tf_exact_match_detection"):
                u_base = lv.get("u_probability")
            else:
                u_base = next(
                    (
                        other.get("u_probability")
                        for other in raw_levels
                        if not other.get("is_null_level")
                        and other["sql_condition"].strip().upper() != "ELSE"
                        and _exact_match_column(other["sql_condition"]) == tf_col.lower()
                    ),
                    None,
                )
            if u_base is None:
                raise UnsupportedModel(f"no u-probability to base the TF adjustment of {tf_col}")
            log2_u_base = math.log2(float(u_base))
        else:
            tf_col = None
        levels.append(
            _Level(
                label=lv.get("label_for_charts") or sql,
                gamma=g,
                condition=None if is_else else _compile(_parse(sql)),
                is_null=is_null,
                match_weight=_level_weight(lv),
                tf_column=tf_col,
                tf_weight=tf_weight,
                tf_min_u=float(lv.get("tf_minimum_u_value", 0.0)),
                log2_u_base=log2_u_base,
            )
        )
    has_tf = any(lv.get("tf_adjustment_column") for lv in raw_levels)
    return _Comparison(name=cc["output_column_name"], levels=tuple(levels), has_tf=has_tf)


def _lookup(expr: exp.Expression) -> tuple[str, bool] | None:
    """How a store can find records by one blocking part: (column, is_prefix), or None.

    `l.col` is an equality on the column; `substr(l.col, 1, n)` a prefix of it. Other
    expressions are not looked up (the rule's other parts narrow it, and every candidate is
    checked against the whole rule afterwards)."""
    if isinstance(expr, exp.Column):
        return _column_ref(expr)[1], False
    if isinstance(expr, exp.Substring) and isinstance(expr.this, exp.Column):
        start = expr.args.get("start")
        if isinstance(start, exp.Literal) and start.this == "1":
            return _column_ref(expr.this)[1], True
    return None


def _blocking_rule(sql: str) -> tuple[str, list[Expr], list[tuple[str, bool] | None]]:
    """A rule `l.a = r.a AND f(l.b) = f(r.b)` → (key name, per-part extractors of one record,
    per-part store lookups)."""
    node = _parse(sql)
    parts: list[exp.Expression] = []
    stack = [node]
    while stack:
        n = stack.pop()
        while isinstance(n, exp.Paren):
            n = n.this
        if isinstance(n, exp.And):
            stack.extend([n.expression, n.this])
        else:
            parts.append(n)
    names, extractors, lookups = [], [], []
    for part in parts:
        if not isinstance(part, exp.EQ):
            raise UnsupportedModel(f"blocking rule is not a conjunction of equalities: {sql}")
        left, right = part.this, part.expression
        sides = {_column_ref(c)[0] for c in left.find_all(exp.Column)}
        if sides != {"l"}:
            left, right = right, left
        lhs = left.copy()
        for c in lhs.find_all(exp.Column):
            c.set("table", None)
        rhs = right.copy()
        for c in rhs.find_all(exp.Column):
            c.set("table", None)
        if lhs.sql() != rhs.sql():
            raise UnsupportedModel(f"blocking rule compares different expressions: {sql}")
        names.append(lhs.sql(dialect="duckdb").replace('"', ""))
        extractors.append(_compile(left))
        lookups.append(_lookup(left))
    return "&".join(names), extractors, lookups


def blocking_rule_parts(sql: str) -> list[str]:
    """A blocking rule `l.a = r.a AND substr(l.b, 1, 4) = substr(r.b, 1, 4)` as its column
    expressions (`["a", "SUBSTRING(b, 1, 4)"]`), in DuckDB SQL.

    Raises:
        UnsupportedModel: the rule is not a conjunction of equalities of one expression.
    """
    return _blocking_rule(sql)[0].split("&")


def _as_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class OnlineScorer:
    """Scores one record against candidates exactly as Splink's `score_pairs` would.

    Build one per model and reuse it: compiling the model's SQL happens here, once.
    """

    def __init__(self, model: MatchModel) -> None:
        model = model_for(model, "duckdb")  # a model in Spark's dialect scores the same
        settings = model.settings
        self.model = model
        self._uid = settings.get("unique_id_column_name", "unique_id")
        self._comparisons = tuple(_compile_comparison(cc) for cc in settings["comparisons"])
        prior = float(settings["probability_two_random_records_match"])
        # splink.internals.misc.prob_to_match_weight
        self._prior_mw = math.log2(prior / (1 - prior)) if prior != 1 else math.inf
        self._tf = model.term_frequencies
        # junk values (`00000`) count as missing, as the batch treats them (builder.JUNK_*)
        self._junk = {c: frozenset(v) for c, v in (model.metadata.get("junk_values") or {}).items()}
        self._blocking = [
            _blocking_rule(br["blocking_rule"] if isinstance(br, dict) else br)
            for br in settings.get("blocking_rules_to_generate_predictions", [])
        ]
        self._columns = sorted(
            {
                c
                for cc in settings["comparisons"]
                for lv in cc["comparison_levels"]
                if lv["sql_condition"].strip().upper() != "ELSE"
                for c in (_column_ref(col)[1] for col in _parse(lv["sql_condition"]).find_all(exp.Column))
            }
        )
        missing_tf = {lv.tf_column for cc in self._comparisons for lv in cc.levels if lv.tf_column} - set(
            self._tf
        )
        if missing_tf:
            raise UnsupportedModel(f"model has no TF table for {sorted(missing_tf)}")

    @property
    def version(self) -> str:
        """The model version, recorded on every link this scorer makes."""
        return self.model.version

    @property
    def columns(self) -> list[str]:
        """Input columns the model reads."""
        return list(self._columns)

    def _prepare(self, record: Mapping[str, Any]) -> dict[str, Any]:
        row = {c: _as_text(record.get(c)) for c in self._columns}
        for c, junk in self._junk.items():
            if row.get(c) in junk:
                row[c] = None
        row[self._uid] = record.get(self._uid)
        return row

    def _rule_values(self, record: Mapping[str, Any]) -> Iterator[tuple[str, list[Any], list[Any]]]:
        """(rule name, part values, part lookups) of each rule with no NULL part for `record`
        (NULL never equals anything in Splink's blocking)."""
        row = self._prepare(record)
        for name, extractors, lookups in self._blocking:
            values = [f(row, row) for f in extractors]
            if all(v is not None for v in values):
                yield name, values, lookups

    def blocking_keys(self, record: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Keys under which candidates for `record` are found, one per blocking rule it has.
        A rule over several expressions joins their values with U+001F."""
        return [(name, _KEY_SEPARATOR.join(str(v) for v in values))
                for name, values, _ in self._rule_values(record)]

    def blocking_lookups(self, record: Mapping[str, Any]) -> list[list[AttributeMatch]]:
        """Per blocking rule that `record` has a key for, the store lookups that find its
        candidates (see `GraphStore.keys_matching`): a superset of the records the rule pairs
        with `record`, so check candidates with `blocking_keys`. A rule none of whose parts can
        be looked up is left out."""
        out = []
        for _, values, lookups in self._rule_values(record):
            conditions = [
                AttributeMatch(lookup[0], str(v), lookup[1])
                for lookup, v in zip(lookups, values, strict=True)
                if lookup is not None
            ]
            if conditions:
                out.append(conditions)
        return out

    def score(self, record: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]) -> list[PairScore]:
        """Scores `record` (left) against each candidate (right), in candidate order."""
        left = self._prepare(record)
        return [self._score(left, self._prepare(c)) for c in candidates]

    def score_pair(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> PairScore:
        return self._score(self._prepare(left), self._prepare(right))

    def _score(self, left: dict[str, Any], right: dict[str, Any]) -> PairScore:
        total = self._prior_mw
        parts = []
        for cc in self._comparisons:
            level = cc.levels[-1]
            for lv in cc.levels:
                if lv.condition is None or lv.condition(left, right) is True:
                    level = lv
                    break
            tf_adj = 0.0
            if level.tf_column is not None:
                col = level.tf_column
                tf_adj = self._tf_adjustment(level, left.get(col), right.get(col))
            # Same summation order as Splink's SQL: prior + mw_a + tf_a + mw_b + ...
            total = total + level.match_weight
            if cc.has_tf:
                total = total + tf_adj
            parts.append(
                ComparisonScore(
                    comparison=cc.name,
                    level=level.label,
                    comparison_vector_value=level.gamma,
                    level_match_weight=level.match_weight,
                    tf_adjustment=tf_adj,
                    bits=level.match_weight + tf_adj,
                )
            )
        # Splink's numerically stable form of 1 / (1 + 2^-w)
        if total >= 0:  # noqa: SIM108
            prob = 1.0 / (1.0 + 2.0 ** (-total))
        else:
            prob = 2.0**total / (1.0 + 2.0**total)
        return PairScore(
            unique_id_l=left.get(self._uid),
            unique_id_r=right.get(self._uid),
            match_weight=total,
            match_probability=prob,
            prior_match_weight=self._prior_mw,
            comparisons=tuple(parts),
        )

    def _tf_adjustment(self, level: _Level, value_l: Any, value_r: Any) -> float:
        """Splink's `_tf_adjustment_sql`: w·(log2 u_base − log2 max(tf_l, tf_r, min_u))."""
        table = self._tf[level.tf_column]  # type: ignore[index]
        tf_l = table.get(value_l) if value_l is not None else None
        tf_r = table.get(value_r) if value_r is not None else None
        if tf_l is None and tf_r is None:
            return 0.0
        tf = max(x for x in (tf_l, tf_r, level.tf_min_u) if x is not None)
        return level.tf_weight * (level.log2_u_base - math.log2(tf))
