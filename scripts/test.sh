#!/usr/bin/env bash
# The project's test command: installs what is missing, runs every test of the workspace
# (unit tests, and integration tests that start real multi-node clusters), then a short
# Jepsen pass (scripts/jepsen-smoke.sh: register and set under faults, against the
# docker-compose cluster when Docker answers, else against local processes), failing on
# any anomaly. STRATUS_SKIP_JEPSEN=1 skips that last pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked "$@"
if [[ ${STRATUS_SKIP_JEPSEN:-0} != 1 ]]; then
    scripts/jepsen-smoke.sh
fi
