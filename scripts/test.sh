#!/usr/bin/env bash
# The project's test command: installs what is missing, then runs every test of the
# workspace (unit tests, and integration tests that start real multi-node clusters).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo test --workspace --locked "$@"
