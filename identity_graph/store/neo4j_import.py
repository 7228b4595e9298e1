"""Files for Neo4j's offline bulk importer (`neo4j-admin database import full`), from the parquet
tables of `GraphStore.export_parquet`: a first load of a large graph without Cypher.

The importer writes the store files directly, with the server stopped, and is many times faster than
`load_parquet` (UNWIND batches over Bolt), see BENCHMARKS.md "Neo4j bulk load". It builds the same
graph as `Neo4jStore.load_parquet` (the graph model of `identity_graph.store.neo4j`): identifier
nodes plus key-only placeholders for link and observation ends that are not identifiers,
observations with their `OBSERVED_WITH` relationships, links, customers, aliases, events, the
event counter and decisions by people (`LinkConstraint`). Not imported: the blocking-key index (it
is derived; with no version node it reads as stale and the server rebuilds it when it opens the
store with a model), and constraints and indexes, which `Neo4jStore` creates when it first opens
the database and Neo4j builds from the imported data.

`scripts/neo4j.sh import DIR PARQUET_DIR` stops the server in DIR, runs this module and the
importer, and starts the server again:

    python -m identity_graph.store.neo4j_import PARQUET_DIR OUT_DIR   # prints the importer's arguments
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from identity_graph.store.tables import TABLES

# Header names: `name:type` with the importer's types; ID columns are stored as the property
# before the colon (`key:ID(Identifier)` stores `key`).
_HEADERS: dict[str, dict[str, str]] = {
    "identifiers": {"key": "key:ID(Identifier)", "first_seen": "first_seen:datetime",
                    "last_seen": "last_seen:datetime", "generic": "generic:boolean"},
    "observations": {"id": "id:ID(Observation)", "observed_at": "observed_at:datetime"},
    "links": {"a": ":START_ID(Identifier)", "b": ":END_ID(Identifier)",
              "probability": "probability:double", "match_weight": "match_weight:double",
              "created_at": "created_at:datetime", "removed_at": "removed_at:datetime"},
    "customers": {"id": "id:ID(Customer)", "created_at": "created_at:datetime"},
    "aliases": {"alias": "alias:ID(Alias)"},
    "events": {"seq": "seq:long", "at": "at:datetime"},
    "constraints": {"constraint_id": "constraint_id:ID(LinkConstraint)",
                    "created_at": "created_at:datetime", "withdrawn_at": "withdrawn_at:datetime"},
}


def _iso(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as ISO-8601 UTC text with microseconds (null stays null)."""
    return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")


def _write(table: pa.Table, path: Path, headers: dict[str, str]) -> Path:
    """One CSV file with its header line. Every present value is quoted, so an empty string stays
    an empty string; a null is an unquoted empty field, which the importer leaves out."""
    columns = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = _iso(col)
        columns.append(col)
    out = pa.Table.from_arrays(columns, names=[headers.get(n, n) for n in table.column_names])
    pcsv.write_csv(out, path, pcsv.WriteOptions(quoting_style="all_valid"))
    return path


def write_import_files(tables: dict[str, pa.Table], directory: str | Path) -> list[str]:
    """Writes the importer's CSV files for `tables` (schemas of `tables.TABLES`) into `directory`.

    Returns:
        The `--nodes=`/`--relationships=` arguments for `neo4j-admin database import full`.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    args: list[str] = []

    def add(kind: str, label: str, table: pa.Table, name: str, headers: dict[str, str]) -> None:
        args.append(f"--{kind}={label}={_write(table, out / f'{name}.csv', headers)}")

    identifiers = tables["identifiers"]
    generic = pc.fill_null(identifiers.column("generic"), False)
    identifiers = identifiers.set_column(identifiers.column_names.index("generic"), "generic", generic)
    add("nodes", "Identifier", identifiers, "identifiers", _HEADERS["identifiers"])
    # Placeholders: ends of links and observations that are not identifiers (key only).
    ends = pa.chunked_array(
        tables["links"].column("a").chunks + tables["links"].column("b").chunks
        + tables["observations"].column("key").chunks, pa.string())
    missing = pc.unique(pc.filter(ends, pc.invert(pc.is_in(ends, identifiers.column("key")))))
    if len(missing):
        add("nodes", "Identifier", pa.table({"key": missing}), "placeholders", _HEADERS["identifiers"])
    observations = tables["observations"]
    add("nodes", "Observation", observations, "observations", _HEADERS["observations"])
    observed = pa.table({":START_ID(Identifier)": observations.column("key"),
                         ":END_ID(Observation)": observations.column("id")})
    add("relationships", "OBSERVED_WITH", observed, "observed_with", {})
    add("relationships", "LINK", tables["links"], "links", _HEADERS["links"])
    add("nodes", "Customer", tables["customers"], "customers", _HEADERS["customers"])
    add("nodes", "Alias", tables["aliases"], "aliases", _HEADERS["aliases"])
    add("nodes", "LinkConstraint", tables["constraints"], "constraints", _HEADERS["constraints"])
    events = tables["events"]
    add("nodes", "Event", events, "events", _HEADERS["events"])
    if events.num_rows:
        top = pc.max(events.column("seq")).as_py()
        counter = pa.table({"name": ["events"], "value:long": pa.array([top], pa.int64())})
        add("nodes", "Sequence", counter, "sequence", {})
    return args


def read_parquet_tables(directory: str | Path) -> dict[str, pa.Table]:
    """The tables of an `export_parquet` directory, in the schemas of `tables.TABLES`."""
    src = Path(directory)
    tables = {}
    for name, schema in TABLES.items():
        table = pq.read_table(src / f"{name}.parquet")
        if name == "links" and "claimant" not in table.column_names:  # exported before claimants
            table = table.append_column("claimant", pa.nulls(table.num_rows, pa.string()))
        tables[name] = table.select(schema.names).cast(schema)
    return tables


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m identity_graph.store.neo4j_import PARQUET_DIR OUT_DIR", file=sys.stderr)
        return 2
    for arg in write_import_files(read_parquet_tables(argv[0]), argv[1]):
        print(arg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
