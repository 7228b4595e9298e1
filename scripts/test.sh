#!/usr/bin/env bash
# Installs everything (virtualenv, package, generated stubs, Neo4j from Maven Central, Go tools) and runs the
# whole test suite. The suite starts its own Neo4j unless NEO4J_URI is set. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
bash scripts/neo4j.sh install
bash scripts/go_tools.sh >/dev/null   # grpcurl, buf, protoc-gen-go(-grpc) from the Go module proxy (cached)
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
