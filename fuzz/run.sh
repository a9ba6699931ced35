#!/usr/bin/env bash
# Run every fuzz target for a bounded time: `fuzz/run.sh [SECONDS_PER_TARGET]` (default 600).
# The same build, seeds and verdicts as the CI smoke run (`fuzz/smoke.sh`), only longer.
set -euo pipefail
cd "$(dirname "$0")"
source ./common.sh
fuzz_all "${1:-600}"
