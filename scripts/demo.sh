#!/usr/bin/env bash
# Installs the project into .venv and runs the demo on the embedded store (no server needed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
exec .venv/bin/identity-demo "$@"
