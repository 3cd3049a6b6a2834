#!/usr/bin/env bash
# Starts the embedded dev cluster (6 nodes over 3 zones on 127.0.0.1). Flags go to `stratusd dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --locked -q -p stratus-node --bin stratusd -- dev "$@"
