#!/usr/bin/env bash
# Run every fuzz target for a bounded time: `fuzz/run.sh [SECONDS_PER_TARGET]` (default 600).
#
# cargo-fuzz needs nightly-only `-Z` flags; no nightly toolchain can be fetched here, so
# the stable toolchain is told to accept them with RUSTC_BOOTSTRAP=1 (libFuzzer via
# libfuzzer-sys, AddressSanitizer on). Seeds come from real tokens, cookie headers and
# journals (`cargo run --bin seeds`).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo run --quiet --bin seeds
mkdir -p artifacts logs
for target in decode cookie_header journal; do
  echo "==> $target for ${secs}s"
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=8192 \
    -print_final_stats=1 2>&1 | tee "logs/$target.log" | grep -E "^#[0-9]+.*(DONE|pulse)|stat::|ERROR|panicked" || true
done
echo "logs under fuzz/logs/, crashes (if any) under fuzz/artifacts/"
