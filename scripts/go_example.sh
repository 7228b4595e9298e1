#!/usr/bin/env bash
# Builds the Go client example (examples/go): installs protoc-gen-go and protoc-gen-go-grpc
# (scripts/go_tools.sh, cached), generates Go stubs from proto/ with grpc_tools.protoc into
# examples/go/gen/ (not committed), and builds .gotools/bin/identity-go-example. Needs Go and
# the project's .venv (scripts/setup.sh). Prints the binary's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="$(bash scripts/go_tools.sh)"
PY="${PYTHON:-.venv/bin/python}"
rm -rf examples/go/gen
"$PY" - "$BIN" <<'PY'
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

bin_dir = Path(sys.argv[1])
files = sorted(str(p.relative_to("proto")) for p in Path("proto").rglob("*.proto"))
args = [
    "grpc_tools.protoc", "-Iproto", f"-I{resources.files('grpc_tools') / '_proto'}",
    f"--plugin=protoc-gen-go={bin_dir / 'protoc-gen-go'}",
    f"--plugin=protoc-gen-go-grpc={bin_dir / 'protoc-gen-go-grpc'}",
    "--go_out=examples/go", "--go_opt=module=identitygraph",
    "--go-grpc_out=examples/go", "--go-grpc_opt=module=identitygraph",
    *files,
]
sys.exit(protoc.main(args))
PY
cd examples/go
go build -o "$BIN/identity-go-example" .
echo "$BIN/identity-go-example"
