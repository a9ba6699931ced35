# Shared by fuzz/run.sh and fuzz/smoke.sh (sourced, from fuzz/): build, seed and run every
# fuzz target for a bounded time, one verdict line per target.
#
# cargo-fuzz needs nightly-only `-Z` flags; no nightly toolchain can be fetched here, so
# the stable toolchain is told to accept them with RUSTC_BOOTSTRAP=1 (libFuzzer via
# libfuzzer-sys, AddressSanitizer on, debug assertions and overflow checks on with `-a`).

FUZZ_TARGETS=(decode cookie_header journal)

# fuzz_all SECONDS_PER_TARGET: 0 if every target ran its time without a crash, a failed
# assertion, a leak, a timeout or running out of memory; 1 otherwise (after running all).
fuzz_all() {
  local secs="$1" target rc execs why failed=() summary=()
  export RUSTC_BOOTSTRAP=1
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  # One build of every target and of the seed writer, with the flags `cargo fuzz run -a`
  # uses; the binaries are then run as built (what is fuzzed is what was built here).
  cargo fuzz build -a
  local bin
  bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"
  # Seeds from real tokens, cookie headers and journals (see src/bin/seeds.rs).
  "$bin/seeds"
  mkdir -p logs
  for target in "${FUZZ_TARGETS[@]}"; do
    echo "==> $target for ${secs}s"
    mkdir -p "artifacts/$target"
    rc=0
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0" \
      "$bin/$target" "corpus/$target" -artifact_prefix="artifacts/$target/" \
      -max_total_time="$secs" -max_len=8192 -timeout=25 -print_final_stats=1 \
      >"logs/$target.log" 2>&1 || rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$target.log" | tail -n 1)"
    [ -n "$execs" ] || execs="$(grep -oE '^#[0-9]+' "logs/$target.log" | tail -n 1 | tr -d '#' || true)"
    if [ "$rc" = 0 ]; then
      summary+=("$target: ok, ${execs:-?} execs in ${secs}s")
    else
      failed+=("$target")
      # The panic and its message (the next line), or the sanitizer's or libFuzzer's error.
      why="$(grep -m1 -A1 'panicked at' "logs/$target.log" | tr '\n' ' ' || true)"
      [ -n "$why" ] || why="$(grep -m1 -E '(==|^)ERROR: ' "logs/$target.log" || true)"
      summary+=("$target: FAILED (exit $rc) after ${execs:-?} execs: ${why:-see the log}")
      echo "--- tail of fuzz/logs/$target.log"
      tail -n 40 "logs/$target.log"
    fi
  done
  echo
  printf '%s\n' "${summary[@]}"
  echo "logs under fuzz/logs/, crashing inputs (if any) under fuzz/artifacts/<target>/;" \
    "reproduce one with: RUSTC_BOOTSTRAP=1 cargo fuzz run -a <target> artifacts/<target>/<file> (from fuzz/)"
  ((${#failed[@]} == 0))
}
