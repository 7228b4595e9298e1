"""Shared fixtures: one real Neo4j per test run, and a `store` fixture over both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "neo4j")


@dataclass(frozen=True)
class Neo4jServer:
    uri: str
    user: str
    password: str
    state: Path | None = None
    """The server's state directory (conf, data, logs) when this machine runs it: the one
    started for the test run, or `$NEO4J_STATE_DIR` beside `$NEO4J_URI`."""


def _parse_env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jServer]:
    """The server named by NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD, or one started for this run."""
    if os.environ.get("NEO4J_URI"):
        yield Neo4jServer(
            os.environ["NEO4J_URI"],
            os.environ.get("NEO4J_USER", "neo4j"),
            os.environ.get("NEO4J_PASSWORD", ""),
            Path(os.environ["NEO4J_STATE_DIR"]) if os.environ.get("NEO4J_STATE_DIR") else None,
        )
        return
    state = tmp_path_factory.mktemp("neo4j")
    script = ROOT / "scripts" / "neo4j.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    for attempt in (1, 2):  # a second try covers a lost race for the free port
        started = subprocess.run(
            ["bash", str(script), "start", str(state)], capture_output=True, text=True, env=env
        )
        if started.returncode == 0:
            break
        subprocess.run(["bash", str(script), "stop", str(state)], env=env, check=False)
        if attempt == 2:
            raise RuntimeError(f"could not start Neo4j:\n{started.stderr}")
        print(f"Neo4j did not start (attempt {attempt}), retrying:\n{started.stderr}", file=sys.stderr)
    values = _parse_env(started.stdout)
    try:
        yield Neo4jServer(values["NEO4J_URI"], values["NEO4J_USER"], values["NEO4J_PASSWORD"], state)
    finally:
        subprocess.run(["bash", str(script), "stop", str(state)], env=env, check=False)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    """An empty store of each backend; the Neo4j one is wiped before and after the test."""
    from identity_graph.store import open_store

    if backend == "sqlite":
        s = open_store(str(tmp_path / "identity.db"))
        try:
            yield s
        finally:
            s.close()
        return
    server: Neo4jServer = request.getfixturevalue("neo4j_server")
    s = open_store(neo4j_uri=server.uri, neo4j_user=server.user, neo4j_password=server.password)
    s.clear()
    try:
        yield s
    finally:
        s.clear()
        s.close()


@pytest.fixture(scope="session")
def go_bin() -> Path:
    """grpcurl, buf, protoc-gen-go and protoc-gen-go-grpc, installed from the Go module proxy by
    scripts/go_tools.sh (cached in .gotools/; needs Go on PATH)."""
    out = subprocess.run(["bash", str(ROOT / "scripts" / "go_tools.sh")], capture_output=True, text=True,
                         timeout=1800)
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """ONE local Spark for the whole run (2 cores, small memory, no UI), with Splink's UDF jar;
    its log goes to a file in the session's temp dir, not into the test output."""
    from batch.engines.spark import log_to_file, spark_session

    tmp = tmp_path_factory.mktemp("spark")
    conf = {
        "spark.driver.memory": "1g",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "2",
        "spark.sql.warehouse.dir": str(tmp / "warehouse"),
        "spark.local.dir": str(tmp / "local"),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        **log_to_file(tmp / "spark.log"),
    }
    session = spark_session("local[2]", conf, app_name="identity-graph-tests")
    session.sparkContext.setCheckpointDir(str(tmp / "checkpoints"))
    yield session
    session.stop()
