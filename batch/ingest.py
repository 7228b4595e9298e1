"""`identity-batch ingest`: stream a CSV or parquet file of source records into the graph.

Each row is one observation from a source system: `source` + `record_id` name a `source_record`
identifier (`source_record:<source>/<record_id>`); identifier columns (email, phone, ...) are linked
`observed` to it, with the record as claimant (`verified` when the source is trusted); attribute
columns are observed with it. A bad value (an invalid phone, an
unparsable date) is dropped from its row and the rest of the row loads; a row without a source or
record id is rejected whole. Both go to a rejects CSV with the reason, and so does a blocked value
(`test@test.com`), so nothing is lost silently. More than `max_reject_rate` of rows with a bad
value or rejected makes the run fail (`IngestResult.too_many_rejects`), so a nightly job cannot
succeed on garbage.

Every attribute has a kind (`identity_graph.attributes.Kind`): built-in attributes their own,
custom ones as the mapping declares (`soc_sec_id = {name = "national_id", kind = "code"}`; default
`text`). Ingest records the declared kinds as an `attribute_kinds` event, which the relink reads
to choose each attribute's comparison.


Re-ingesting the same file writes nothing: identifier upserts only widen first/last seen,
observation and link ids are hashes of their content, and events are appended only for links
that are new. Observation times come from a mapped `observed_at` column, else `--observed-at`,
else the file's modification time.

Each batch goes through the customer rules (`identity_graph.rules.decide`) over its identifiers
and their stored links before it is written: a link to a blocked value or beyond a per-type
limit is not written, and a value that joins records of clearly different people (a shop's
email on many CRM rows, `a@a.com`) is marked generic; each is a `violation` event (and counted
in the result). Customers are (re)computed by `identity-batch relink`, which applies the same
rules to the whole graph; until then an ingested identifier resolves online through its links
like any other.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from identity_graph.attributes import (
    BUILTIN_KINDS,
    MAX_ATTRIBUTE_LENGTH,
    Kind,
    clean_attribute,
    parse_kind,
)
from identity_graph.config import GraphConfig
from identity_graph.errors import InvalidArgument
from identity_graph.guardrails import Violation
from identity_graph.identifiers import IdentifierTypes
from identity_graph.model import (
    ATTRIBUTES,
    ChangeSet,
    Event,
    IdentifierUpsert,
    Link,
    LinkKind,
    Observation,
    utcnow,
)
from identity_graph.region_data import RegionObservations
from identity_graph.rules import Decision, Region, Rules, decide
from identity_graph.store.base import GraphStore

log = logging.getLogger(__name__)

ACTOR = "identity-batch"
BATCH_ROWS = 5_000
IDENTIFIER_TYPES = ("email", "phone", "whatsapp", "web_cookie", "account_id", "device_id")
MAX_REJECT_RATE = 0.05
"""Default: the share of rows with a bad value (or rejected whole) above which ingest fails."""
KINDS_EVENT = "attribute_kinds"
"""Event type recording the kinds a mapping declared: {"kinds": {attribute: kind}}."""


@dataclass
class Mapping_:
    """How the columns of a file map to a source record, identifiers and attributes.

    Read from a JSON or TOML file (`load_mapping`) or built from CLI flags. Keys:
        source: a constant source name for every row (or)
        source_column: the column holding the source name (default "source")
        record_id_column: the column holding the record id (default "record_id")
        identifiers: {column: identifier type}
        attributes: {column: attribute name} (standard or custom names), or
            {column: {name = ..., kind = ...}} to declare a custom attribute's kind
            (`identity_graph.attributes.Kind`; default its built-in kind, else `text`)
        observed_at_column: a column of ISO timestamps (optional)
        date_formats: strptime formats tried for date_of_birth before ISO (e.g. "%d/%m/%Y")
        default_region: region for national phone numbers (default from GraphConfig)
        custom_types: extra identifier types to register (opaque normaliser)
        channel: the channel recorded on observations and links (default "ingest")
        delimiter: the CSV field separator (default: detected from the file's first lines)
        detect_columns: also map the columns named like an identifier type or a standard
            attribute that no explicit entry names (default true)
    """

    source: str | None = None
    source_column: str | None = "source"
    record_id_column: str = "record_id"
    identifiers: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    """attribute name -> declared kind (filled from `attributes` entries that declare one)"""
    observed_at_column: str | None = None
    date_formats: list[str] = field(default_factory=list)
    default_region: str | None = None
    custom_types: list[str] = field(default_factory=list)
    channel: str = "ingest"
    delimiter: str | None = None
    detect_columns: bool = True

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Mapping_:
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise InvalidArgument("mapping", f"unknown keys {sorted(unknown)}")
        data = dict(raw)
        attributes: dict[str, str] = {}
        kinds = dict(data.pop("kinds", {}) or {})
        for col, spec in dict(data.pop("attributes", {}) or {}).items():
            if isinstance(spec, Mapping):
                extra = set(spec) - {"name", "kind"}
                if extra:
                    raise InvalidArgument(f"mapping.attributes.{col}", f"unknown keys {sorted(extra)}")
                name = str(spec.get("name") or col)
                if "kind" in spec:
                    kinds[name] = parse_kind(spec["kind"], f"mapping.attributes.{col}.kind").value
            else:
                name = str(spec or col)
            attributes[str(col)] = name
        for name, kind in kinds.items():
            kinds[name] = parse_kind(kind, f"mapping.kinds.{name}").value
        return cls(**data, attributes=attributes, kinds=kinds)

    def kind_of(self, name: str) -> Kind:
        """The attribute's declared kind, else its built-in kind, else text."""
        if name in self.kinds:
            return Kind(self.kinds[name])
        return BUILTIN_KINDS.get(name, Kind.TEXT)

    def complete(self, columns: list[str]) -> Mapping_:
        """Fills what was not given from the header: columns named like identifier types are
        identifiers, columns named like standard attributes are attributes."""
        out = Mapping_(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        out.identifiers = dict(self.identifiers)
        out.attributes = dict(self.attributes)
        out.kinds = dict(self.kinds)
        taken = set(out.identifiers) | set(out.attributes)
        taken |= {c for c in (out.source_column, out.record_id_column, out.observed_at_column) if c}
        if self.detect_columns:  # explicit entries add to what the header names, never replace it
            named = set(out.attributes.values())
            for c in columns:
                if c in IDENTIFIER_TYPES and c not in taken:
                    out.identifiers[c] = c
                elif c in ATTRIBUTES and c not in taken and c not in named:
                    out.attributes[c] = c
        if out.observed_at_column is None and "observed_at" in columns:
            out.observed_at_column = "observed_at"
        if out.source is not None and out.source_column not in columns:
            out.source_column = None
        missing = [c for c in (out.source_column, out.record_id_column, out.observed_at_column,
                               *out.identifiers, *out.attributes) if c and c not in columns]
        if missing:
            sep = "tab" if self.delimiter == "\t" else repr(self.delimiter or ",")
            hint = (f" (read with delimiter {sep}; the header is {columns[:8]}: "
                    f"pass --delimiter if the file uses another)" if len(columns) <= 1 else "")
            if out.source is None and out.source_column in missing:
                hint += "; give --source NAME for a file without a source column"
            raise InvalidArgument("mapping", f"columns not in the file: {missing}{hint}")
        if out.source is None and out.source_column is None:
            raise InvalidArgument("mapping", "give a source column or a constant source (--source NAME)")
        return out


def load_mapping(path: str | Path) -> Mapping_:
    """Reads a mapping from JSON (`.json`) or TOML (anything else)."""
    p = Path(path)
    raw = json.loads(p.read_text()) if p.suffix == ".json" else tomllib.loads(p.read_text())
    return Mapping_.from_dict(raw)


@dataclass
class IngestResult:
    rows: int = 0
    loaded: int = 0
    rejected: int = 0
    values_dropped: int = 0
    rows_with_bad_values: int = 0
    """rows loaded without one or more invalid values (blocked values do not count)"""
    identifiers: int = 0
    links_new: int = 0
    links_refused: int = 0
    """links the rules refused (a blocked value, a per-type limit), each a violation event"""
    generic_marked: int = 0
    """values the rules set apart (household, junk), each a generic and a violation event"""
    violations: list[Violation] = field(default_factory=list)
    """the first 100 violations, for the CLI's summary"""
    observations: int = 0
    rejects_file: str | None = None
    unmapped_columns: list[str] = field(default_factory=list)
    attribute_kinds: dict[str, str] = field(default_factory=dict)
    max_reject_rate: float = MAX_REJECT_RATE

    @property
    def reject_rate(self) -> float:
        """Share of rows rejected whole or loaded without a bad value."""
        return (self.rejected + self.rows_with_bad_values) / self.rows if self.rows else 0.0

    @property
    def too_many_rejects(self) -> bool:
        return self.reject_rate > self.max_reject_rate

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "violations": [dataclasses.asdict(v) for v in self.violations],
                "reject_rate": round(self.reject_rate, 6),
                "too_many_rejects": self.too_many_rejects}


DELIMITERS = ",;\t|"
"""The separators `detect_delimiter` considers."""


def detect_delimiter(path: Path, sample_bytes: int = 64 * 1024) -> str:
    """The CSV separator of `path` by `csv.Sniffer` over its first lines: one of `DELIMITERS`,
    else a comma (a one-column file has nothing to detect)."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        sample = f.read(sample_bytes)
    if len(sample) == sample_bytes and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _columns(path: Path, delimiter: str) -> list[str]:
    if path.suffix.lower() in (".parquet", ".pq"):
        return list(pq.ParquetFile(path).schema_arrow.names)
    with path.open(newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f, delimiter=delimiter), [])


def _batches(path: Path, columns: list[str], delimiter: str) -> Iterator[pa.RecordBatch]:
    """The file as record batches of strings, never whole in memory."""
    if path.suffix.lower() in (".parquet", ".pq"):
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)
        return
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 20, encoding="utf8"),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns}, strings_can_be_null=False,
        ),
    )
    yield from reader


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).strip()


def _timestamp(value: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InvalidArgument("observed_at", f"not an ISO timestamp: {value[:40]!r}") from e
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class _Row:
    """One row's outcome: the change it contributes, what was dropped from it, or why it was
    rejected whole."""

    __slots__ = ("bad", "dropped", "identifiers", "links", "reason")

    def __init__(self) -> None:
        self.identifiers: list[IdentifierUpsert] = []
        self.links: list[Link] = []
        self.reason = ""
        self.dropped: list[str] = []
        self.bad = False
        """a value was dropped because it was invalid (not merely blocked)"""


class Ingester:
    """Turns rows into change sets; one instance per file."""

    def __init__(self, mapping: Mapping_, config: GraphConfig, default_time: datetime,
                 suppressed: Callable[[str], bool] | None = None) -> None:
        self.m = mapping
        self.suppressed = suppressed
        self.config = config
        self.types = IdentifierTypes(mapping.default_region or config.default_region)
        for t in mapping.custom_types:
            self.types.register(t)
        for col, t in mapping.identifiers.items():
            if t not in self.types.names or t == "source_record":
                raise InvalidArgument("mapping.identifiers", f"column {col!r}: unknown type {t!r}")
        for col, name in mapping.attributes.items():
            if not name.isidentifier() or len(name) > 64:
                raise InvalidArgument("mapping.attributes", f"column {col!r}: bad name {name!r}")
        self.kinds = {name: mapping.kind_of(name) for name in mapping.attributes.values()}
        self.default_time = default_time

    def _date(self, raw: str) -> str:
        for fmt in self.m.date_formats:
            try:
                return datetime.strptime(raw, fmt).date().isoformat()
            except ValueError:
                continue
        return raw

    def row(self, values: Mapping[str, Any]) -> _Row:
        out = _Row()
        try:
            self._row(values, out)
        except InvalidArgument as e:
            out.reason = str(e)
            out.identifiers, out.links = [], []
        if self.suppressed is not None and any(self.suppressed(u.key) for u in out.identifiers):
            out.reason = "suppressed"  # privacy: an erased identifier is never loaded again
            out.identifiers, out.links = [], []
        return out

    def _drop(self, out: _Row, col: str, e: InvalidArgument) -> None:
        out.dropped.append(f"{col}: {e}")
        out.bad = True

    def _row(self, values: Mapping[str, Any], out: _Row) -> None:
        m = self.m
        source = _text(values.get(m.source_column)) if m.source_column else (m.source or "")
        record_id = _text(values.get(m.record_id_column))
        if not source:
            raise InvalidArgument(m.source_column or "source", "missing source")
        if not record_id:
            raise InvalidArgument(m.record_id_column, "missing record id")
        record = self.types.make("source_record", f"{source}/{record_id}")
        source = record.value.partition("/")[0]
        at = self.default_time
        if m.observed_at_column:
            raw_at = _text(values.get(m.observed_at_column))
            if raw_at:
                try:
                    at = _timestamp(raw_at)
                except InvalidArgument as e:
                    self._drop(out, m.observed_at_column, e)
        observations = []
        for col, name in m.attributes.items():
            raw = _text(values.get(col))
            if not raw:
                continue
            kind = self.kinds[name]
            try:
                if len(raw) > MAX_ATTRIBUTE_LENGTH:
                    raise InvalidArgument(col, f"longer than {MAX_ATTRIBUTE_LENGTH} characters")
                if kind is Kind.DATE:
                    raw = self._date(raw)
                value = clean_attribute(name, raw, kind)
            except InvalidArgument as e:
                self._drop(out, col, e)
                continue
            if value:
                observations.append(Observation(record.key, name, value, source, m.channel, at))
        out.identifiers.append(
            IdentifierUpsert(record.key, record.type, record.value, at, tuple(observations)))
        seen = {record.key}
        for col, type_ in m.identifiers.items():
            raw = _text(values.get(col))
            if not raw:
                continue
            try:
                ident = self.types.make(type_, raw)
            except InvalidArgument as e:
                self._drop(out, col, e)
                continue
            if ident.key in seen:
                continue
            seen.add(ident.key)
            if self.config.is_blocked(ident.key):
                out.dropped.append(f"{col}: blocked value {ident.key} was not loaded")
                continue
            out.identifiers.append(IdentifierUpsert(ident.key, ident.type, ident.value, at))
            # The record asserts the pair: it is the claimant, unless its source is trusted.
            kind = LinkKind.VERIFIED if self.config.is_trusted(source) else LinkKind.OBSERVED
            out.links.append(Link(record.key, ident.key, kind, source=source,
                                  channel=m.channel, event_id=record.key, created_at=at,
                                  actor=ACTOR, claimant=record.key))


def ingest(
    store: GraphStore,
    path: str | Path,
    mapping: Mapping_ | None = None,
    *,
    config: GraphConfig | None = None,
    rejects: str | Path | None = None,
    observed_at: datetime | None = None,
    write_lock: Any = None,
    progress: bool = True,
    suppressed: Callable[[str], bool] | None = None,
    max_reject_rate: float = MAX_REJECT_RATE,
) -> IngestResult:
    """Streams `path` (CSV or parquet) into `store`, one change set per batch of rows.

    Args:
        store: the graph store.
        path: a `.csv` or `.parquet` file.
        mapping: the column mapping; defaults are taken from the header (see `Mapping_.complete`).
        config: blocked values, trusted sources and the default phone region.
        rejects: where rejected rows go (CSV with `_line` and `_reason`); default
            `<file>.rejects.csv`. Written only when something is rejected or dropped.
        observed_at: the observation time of rows without an `observed_at` column; default the
            file's modification time, so that re-ingesting the same file changes nothing.
        write_lock: held around each batch's write (an `IdentityGraph.write_lock`), if given.
        progress: show a progress bar.
        suppressed: whether a normalised key was erased (rows naming one are rejected with reason
            "suppressed"); default the suppression list beside `store`.
        max_reject_rate: above this share of bad rows the result says `too_many_rejects` (the
            CLI then exits non-zero); the good rows are loaded either way.
    Returns:
        Counts, and the rejects file when one was written.
    Raises:
        InvalidArgument: the mapping does not fit the file.
    """
    src = Path(path)
    if not src.exists():
        raise InvalidArgument("file", f"{src} does not exist")
    config = config or GraphConfig()
    given = mapping or Mapping_()
    parquet = src.suffix.lower() in (".parquet", ".pq")
    if not parquet and given.delimiter is None:
        given = dataclasses.replace(given, delimiter=detect_delimiter(src))
    if given.delimiter is not None and len(given.delimiter) != 1:
        raise InvalidArgument("delimiter", f"one character, got {given.delimiter!r}")
    columns = _columns(src, given.delimiter or ",")
    m = given.complete(columns)
    default_time = observed_at or datetime.fromtimestamp(int(src.stat().st_mtime), UTC)
    if suppressed is None:
        from privacy.store import privacy_store_for

        suppressed = privacy_store_for(store).is_suppressed
    ing = Ingester(m, config, default_time, suppressed)
    used = {c for c in (m.source_column, m.record_id_column, m.observed_at_column) if c}
    used |= set(m.identifiers) | set(m.attributes)
    result = IngestResult(unmapped_columns=[c for c in columns if c not in used],
                          attribute_kinds={n: ing.kinds[n].value for n in sorted(ing.kinds)},
                          max_reject_rate=max_reject_rate)
    rejects_path = Path(rejects) if rejects else src.with_name(src.name + ".rejects.csv")
    reject_file = None
    reject_writer: Any = None
    line = 0
    # kinds the mapping declares, for the relink: recorded once, when they change
    declare = {n: k for n, k in sorted(m.kinds.items()) if n in ing.kinds}
    if declare:
        recorded = declared_kinds(store)
        declare = {n: k for n, k in declare.items() if recorded.get(n) != k}
    bar = tqdm(total=src.stat().st_size if src.suffix == ".csv" else None, unit="row",
               desc="ingest", disable=not progress, leave=False)
    if src.suffix == ".csv":
        bar.unit, bar.total = "row", None
    try:
        for batch in _batches(src, columns, m.delimiter or ","):
            rows = batch.to_pylist()
            cs = ChangeSet()
            for values in rows:
                line += 1
                result.rows += 1
                r = ing.row(values)
                problems = [r.reason] if r.reason else r.dropped
                if problems:
                    if reject_writer is None:
                        reject_file = rejects_path.open("w", newline="", encoding="utf-8")
                        reject_writer = csv.writer(reject_file)
                        reject_writer.writerow([*columns, "_line", "_action", "_reason"])
                    action = "row rejected" if r.reason else "value dropped"
                    for p in problems:
                        reject_writer.writerow([_text(values.get(c)) for c in columns]
                                               + [line, action, p])
                if r.reason:
                    result.rejected += 1
                    continue
                result.values_dropped += len(r.dropped)
                result.rows_with_bad_values += r.bad
                result.loaded += 1
                cs.identifiers.extend(r.identifiers)
                cs.links_added.extend(r.links)
            if declare and cs.identifiers:
                cs.events.append(Event(KINDS_EVENT, {"kinds": declare, "actor": ACTOR}, "",
                                       default_time))
                declare = {}
            _write(store, cs, result, write_lock, config)
            bar.update(len(rows))
    finally:
        bar.close()
        if reject_file is not None:
            reject_file.close()
    if reject_writer is not None:
        result.rejects_file = str(rejects_path)
    elif rejects_path.exists() and not rejects:
        os.remove(rejects_path)  # a stale rejects file from an earlier run of this file
    return result


def declared_kinds(store: GraphStore) -> dict[str, str]:
    """attribute -> kind, as the latest `attribute_kinds` events declared them (reads the log)."""
    out: dict[str, str] = {}
    seq = 0
    while True:
        events = store.events(seq, 100_000)
        if not events:
            return out
        for e in events:
            if e.type == KINDS_EVENT:
                out.update(dict(e.payload.get("kinds", {})))
        seq = events[-1].seq


def _write(store: GraphStore, cs: ChangeSet, result: IngestResult, write_lock: Any,
           config: GraphConfig) -> None:
    links = {lk.id: lk for lk in cs.links_added}
    keys = {u.key for u in cs.identifiers}
    result.identifiers += len(keys)
    result.observations += len({o.id for u in cs.identifiers for o in u.observations})
    if not cs:
        return
    if write_lock is not None:
        with write_lock:
            _write_locked(store, cs, links, result, config)
    else:
        _write_locked(store, cs, links, result, config)


def _write_locked(store: GraphStore, cs: ChangeSet, links: dict[str, Link],
                  result: IngestResult, config: GraphConfig) -> None:
    existing = {lk.id for lk in store.links_by_id(links)}
    fresh = [lk for lid, lk in links.items() if lid not in existing]
    decision = _rules(store, cs, fresh, config)
    cs.links_added = decision.made
    cs.generic.update(decision.generic)
    result.links_new += len(decision.made)
    result.links_refused += len(decision.refused)
    result.generic_marked += len(decision.generic)
    at = max((u.seen_at for u in cs.identifiers), default=utcnow())
    cs.events = [
        *cs.events,
        *(Event("link", {"link_id": lk.id, "a": lk.a, "b": lk.b, "kind": lk.kind.label,
                       "source": lk.source, "actor": ACTOR}, "", lk.created_at)
          for lk in decision.made),
        *(Event("generic", {"key": k, "generic": True, "actor": ACTOR}, "", at)
          for k in sorted(decision.generic)),
        *(Event("violation", {"kind": v.kind, "key": v.key, "other": v.other, "reason": v.reason,
                              "actor": ACTOR}, "", at)
          for v in decision.violations),
    ]
    result.violations.extend(decision.violations[: max(0, 100 - len(result.violations))])
    store.apply(cs)


def _rules(store: GraphStore, cs: ChangeSet, proposals: list[Link], config: GraphConfig) -> Decision:
    """The rules (`identity_graph.rules.decide`) over the batch's identifiers and their stored
    links: what the batch may link and which values it shows to be generic. Customers are left
    to the next relink, which applies the same rules to the whole graph."""
    keys = {u.key for u in cs.identifiers}
    stored = store.links(keys)
    region = keys | {k for lk in stored for k in (lk.a, lk.b)}
    nodes = store.get_identifiers(region)
    observed = RegionObservations(store, set(nodes), cs)
    return decide(
        Region(keys=region, links=stored, generic={k: n.generic for k, n in nodes.items()},
               records=observed.records, sightings=observed.sightings,
               new_keys=frozenset(keys - set(nodes))),
        proposals, Rules.of(config), policy="none")
