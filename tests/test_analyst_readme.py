"""README's analyst section, run as printed: the walkthrough's commands, its Cypher against a real
Neo4j (the one the walkthrough starts, with Neo4j Browser), and its SQL against the export."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import duckdb
import networkx as nx
import pytest
from neo4j import GraphDatabase

from tests.browser import dump_dom

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## For analysts")
    end = text.find("\n## ", start + 5)
    return text[start:] if end < 0 else text[start:end]


def _blocks(lang: str, text: str) -> list[str]:
    return [b.strip() for b in re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)]


def _walkthrough() -> list[str]:
    text = _section()
    marker = text.index("<!-- analyst-walkthrough -->")
    block = _blocks("bash", text[marker:])[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_the_walkthrough_five_cypher_queries_and_sql() -> None:
    lines = _walkthrough()
    for cmd in ("export", "explain", "graph", "copy --to-neo4j", "neo4j.sh start", "review accept",
                "review reject", "review constraints"):
        assert any(cmd in line for line in lines), cmd
    assert len(_blocks("cypher", _section())) == 5
    assert len(_blocks("sql", _section())) >= 3


def test_analyst_walkthrough_runs_as_printed(tmp_path: Path) -> None:
    lines = _walkthrough()
    stop = [line for line in lines if "neo4j.sh stop" in line]
    assert len(stop) == 1 and lines[-1] == stop[0]
    # The README's commands run from the repo root: give the scratch folder the paths they name.
    for name in ("scripts", "identity_graph"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_") or k == "NEO4J_CACHE"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHON"] = sys.executable
    env.setdefault("NEO4J_CACHE", str(ROOT / ".neo4j"))
    script = "\n".join(f"echo '>>> {i}'\n{line}" for i, line in enumerate(lines[:-1]))
    script += "\nenv | grep '^NEO4J_' > neo4j.env\n"
    try:
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        outputs = dict(re.findall(r">>> (\d+)\n(.*?)(?=>>> \d+\n|\Z)", run.stdout, flags=re.S))
        said = {lines[int(i)]: out for i, out in outputs.items()}
        _check_outputs(tmp_path, said)
        server = dict(line.split("=", 1) for line in (tmp_path / "neo4j.env").read_text().splitlines())
        _check_browser(server["NEO4J_BROWSER_URL"])
        _check_cypher(tmp_path, server)
        _check_sql(tmp_path)
    finally:
        subprocess.run(["bash", "-c", stop[0]], cwd=tmp_path, env=env, timeout=120, check=False)


def _check_outputs(folder: Path, said: dict[str, str]) -> None:
    explain = next(out for line, out in said.items() if "explain" in line and "--json" not in line)
    assert "the same customer" in explain and "phone:+12127939914 —" in explain
    as_json = next(out for line, out in said.items() if "explain" in line and "--json" in line)
    assert '"assurance": "equivalent"' in as_json
    for table in ("identifiers", "links", "customers", "events", "observations", "constraints", "audit"):
        assert (folder / "out" / f"{table}.parquet").exists()
    queue = next(out for line, out in said.items() if "review list" in line)
    assert "possible links waiting" in queue and "prior" in queue  # the waterfall of each
    decided = next(out for line, out in said.items() if "review constraints" in line)
    assert "must_link" in decided and "cannot_link" in decided and "analyst:lee" in decided
    dom = dump_dom(folder / "customer.html")
    drawn = int(re.search(r'data-drawn-nodes="(\d+)"', dom).group(1))
    assert drawn >= 4 and dom.count('<circle class="node') == drawn
    assert "phone:+12127939914" in (folder / "customer.dot").read_text()
    matches = nx.read_graphml(folder / "matches.graphml", force_multigraph=True)
    kinds = {d["kind"] for _, _, d in matches.edges(data=True)}
    assert matches.number_of_edges() > 0 and kinds <= {"probable", "possible"}
    copied = next(out for line, out in said.items() if "copy --to-neo4j" in line)
    assert "identifiers" in copied and "copied to bolt://127.0.0.1:" in copied


def _check_browser(url: str) -> None:
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        assert "<title>Neo4j Browser" in response.read().decode()


def _check_cypher(folder: Path, server: dict[str, str]) -> None:
    customer = duckdb.sql(f"SELECT customer_id FROM '{folder}/out/identifiers.parquet' "
                          "WHERE key = 'phone:+12127939914'").fetchall()[0][0]
    expected_links = duckdb.sql(f"""
        SELECT count(*) FROM '{folder}/out/links.parquet' l WHERE l.active AND (
            l.a IN (SELECT key FROM '{folder}/out/identifiers.parquet' WHERE customer_id = '{customer}') OR
            l.b IN (SELECT key FROM '{folder}/out/identifiers.parquet' WHERE customer_id = '{customer}'))
    """).fetchall()[0][0]
    driver = GraphDatabase.driver(server["NEO4J_URI"], auth=(server["NEO4J_USER"], server["NEO4J_PASSWORD"]))
    try:
        results = []
        for query in _blocks("cypher", _section()):
            records, summary, _ = driver.execute_query(query, customer=customer)
            warnings = [s.status_description for s in summary.gql_status_objects
                        if s.raw_severity == "WARNING"]
            assert not warnings, f"{query.splitlines()[0]}: {warnings}"
            results.append(records)
    finally:
        driver.close()
    graph, biggest, _chains, _generic, recent = results
    assert len(graph) == expected_links  # each link once, none missing
    assert biggest and biggest[0]["size"] >= biggest[-1]["size"]
    assert recent and sum(r["links"] for r in recent) > 0  # the relink above made links today


def _check_sql(folder: Path) -> None:
    con = duckdb.connect()
    cwd = os.getcwd()
    os.chdir(folder)  # the queries name out/… relative to where they run
    try:
        for query in _blocks("sql", _section()):
            rows = con.execute(query).fetchall()
            if "size distribution" in query:
                assert sum(r[1] for r in rows) > 0
    finally:
        os.chdir(cwd)
        con.close()
