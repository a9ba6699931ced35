#!/usr/bin/env bash
# CI smoke run of every fuzz target: `bash fuzz/smoke.sh [SECONDS_PER_TARGET]` (default 60).
# Builds once, seeds the corpora, runs each target for SECONDS, prints one verdict line per
# target and exits non-zero if any crashed or failed its assertion.
set -euo pipefail
cd "$(dirname "$0")"
source ./common.sh
fuzz_all "${1:-60}"
