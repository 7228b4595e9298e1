#!/usr/bin/env bash
# Installs everything (virtualenv, package with its test and spark extras, generated stubs, Neo4j and Neo4j Browser from Maven
# Central, Go tools from the Go module proxy, Chromium from Debian) and runs the whole test suite. The suite starts its own Neo4j unless NEO4J_URI is
# set. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
bash scripts/neo4j.sh install
bash scripts/neo4j.sh install-browser
# Headless Chromium (Debian's package) draws the HTML pictures and reports in browser tests.
if ! command -v chromium >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/python -m batch.engines.udfs >/dev/null   # the Spark engine's similarity UDFs, compiled once (cached)
bash scripts/go_tools.sh >/dev/null   # grpcurl, buf, protoc-gen-go(-grpc) from the Go module proxy (cached)
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
