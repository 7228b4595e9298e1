"""A first load through Neo4j's offline importer (`scripts/neo4j.sh import`) builds the same graph
as `load_parquet`: compared table by table on the real servers (the test session's, and one started
here because the importer needs its server stopped)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from neo4j import GraphDatabase

from identity_graph.model import ChangeSet, Event
from identity_graph.store import open_store
from identity_graph.store.neo4j_import import read_parquet_tables, write_import_files
from tests.conftest import ROOT, _parse_env
from tests.test_store_contract import EQU, OBS, T0, _rich_graph, link, obs, up

SCRIPT = ROOT / "scripts" / "neo4j.sh"
_SORT = {"identifiers": "key", "observations": "id", "links": "link_id", "customers": "id",
         "aliases": "alias", "events": "seq", "constraints": "constraint_id"}


def _source(tmp_path: Path) -> Path:
    """A graph with every kind of row, empty strings, nulls, a removed link and a link to an
    identifier that was never upserted (a placeholder node), exported as parquet."""
    src = open_store(str(tmp_path / "source.db"))
    try:
        _rich_graph(src)
        d = "email:d@example.com"
        src.apply(ChangeSet(
            identifiers=[up(d, T0 + timedelta(days=2), (obs(d, "last_name", "", source="", channel=""),))],
            links_added=[link(d, "cookie:never-upserted", OBS, claimant=d),
                         link(d, "email:a@example.com", EQU, actor="")],
            events=[Event("note", {"text": "é ünïcode, \"quoted\", comma"}, "", T0)],
        ))
        src.export_parquet(tmp_path / "export")
    finally:
        src.close()
    return tmp_path / "export"


def _sorted(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    return {name: t.sort_by(_SORT[name]) for name, t in tables.items()}


def _placeholders(uri: str, user: str, password: str) -> list[str]:
    with GraphDatabase.driver(uri, auth=(user, password)) as driver:
        records = driver.execute_query(
            "MATCH (n:Identifier) WHERE n.type IS NULL RETURN n.key AS key ORDER BY key").records
    return [r["key"] for r in records]


def test_import_files_header_and_placeholders(tmp_path: Path):
    args = write_import_files(read_parquet_tables(_source(tmp_path)), tmp_path / "csv")
    assert f"--nodes=Identifier={tmp_path / 'csv' / 'placeholders.csv'}" in args
    placeholders = (tmp_path / "csv" / "placeholders.csv").read_text().splitlines()
    assert placeholders == ['"key:ID(Identifier)"', '"cookie:never-upserted"']
    header = (tmp_path / "csv" / "links.csv").read_text().splitlines()[0]
    assert header.startswith('"link_id",":START_ID(Identifier)",":END_ID(Identifier)"')
    assert args[-1].startswith("--nodes=Sequence=")


def test_import_builds_what_load_parquet_builds(neo4j_server, tmp_path: Path):
    export = _source(tmp_path)
    want = _sorted(read_parquet_tables(export))
    want["identifiers"] = want["identifiers"].set_column(
        6, "generic", pc.fill_null(want["identifiers"].column("generic"), False))

    loaded = open_store(neo4j_uri=neo4j_server.uri, neo4j_user=neo4j_server.user,
                        neo4j_password=neo4j_server.password)
    try:
        loaded.clear()
        loaded.load_parquet(export)
        by_load = _sorted(loaded.export_tables())
        load_placeholders = _placeholders(neo4j_server.uri, neo4j_server.user, neo4j_server.password)
    finally:
        loaded.clear()
        loaded.close()

    state = tmp_path / "imported"
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT), "import", str(state), str(export)],
                          capture_output=True, text=True, env=env, timeout=900)
    try:
        assert done.returncode == 0, done.stderr
        server = _parse_env(done.stdout)
        imported = open_store(neo4j_uri=server["NEO4J_URI"], neo4j_user=server["NEO4J_USER"],
                              neo4j_password=server["NEO4J_PASSWORD"])
        try:
            by_import = _sorted(imported.export_tables())
            # the event counter came along: the next event continues the sequence
            top = by_import["events"].column("seq").to_pylist()[-1]
            assert imported.apply(ChangeSet(events=[Event("next", {}, "", T0)])) == [top + 1]
        finally:
            imported.close()
        import_placeholders = _placeholders(server["NEO4J_URI"], server["NEO4J_USER"],
                                            server["NEO4J_PASSWORD"])
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=env, check=False)

    assert load_placeholders == import_placeholders == ["cookie:never-upserted"]
    for name in _SORT:
        assert by_import[name].equals(by_load[name]), name
        assert by_load[name].equals(want[name]), name
    assert by_import["links"].num_rows == 5
    assert "" in by_import["observations"].column("value").to_pylist()  # empty strings kept
