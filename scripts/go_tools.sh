#!/usr/bin/env bash
# Installs the Go tools the tests and the Go example use, at pinned versions, from the Go module
# proxy into .gotools/bin (or $GOTOOLS/bin). Cached: a tool already at its pinned version is not
# rebuilt. Needs Go on PATH (the Go example needs 1.26; an older go fetches that toolchain
# through the module proxy). Prints the bin directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GOTOOLS="${GOTOOLS:-$PWD/.gotools}"
TOOLS=(
  "google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12"
  "google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2"
  "github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"
  "github.com/bufbuild/buf/cmd/buf@v1.75.0"
)
if ! command -v go >/dev/null; then
  echo "go_tools.sh: Go (1.26 or newer for the example) is needed on PATH" >&2
  exit 1
fi
mkdir -p "$GOTOOLS/bin"
for tool in "${TOOLS[@]}"; do
  name="$(basename "${tool%@*}")"
  stamp="$GOTOOLS/bin/.$name.version"
  if [[ -x "$GOTOOLS/bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$tool" ]]; then
    continue
  fi
  echo "go_tools.sh: installing $tool" >&2
  GOBIN="$GOTOOLS/bin" GOFLAGS=-mod=mod go install "$tool"
  echo "$tool" > "$stamp"
done
echo "$GOTOOLS/bin"
