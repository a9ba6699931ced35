#!/usr/bin/env bash
# Logouts per second of one process with a journal on disk (issue 15, journal group
# commit), BEFORE and AFTER in the same run:
#
#   bash bench/journal.sh
#
# Builds bench/http's `journal-logouts` twice, at BASE and at AFTER (each in a git
# worktree of its own under WORK, with this checkout's bench source copied in, so both
# run the same measuring code), then runs ROUNDS rounds, alternating before/after, each
# over every CALLERS count: CALLERS threads calling `revoke_session` on one
# `Arc<MemoryDenylist>` built with `.journal(DIR/…)`, DURATION seconds each. Every call
# that returned Ok was fsynced by then. Prints and writes the raw TSV lines
# (`label callers logouts seconds logouts_per_s p50_us p99_us max_us errors`) to OUT.
#
# Environment (defaults): BASE=65c65c8 (the last commit before group commit) AFTER=HEAD
# DIR=$ROOT/target/journal-bench (must be on the disk to measure: not a tmpfs)
# CALLERS="1 8 64 256 t8 t64 t256" (tN: N tokio tasks on 2 workers) DURATION=5 ROUNDS=3 WORK=/tmp/journal-bench OUT=/dev/stdout
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
BASE=${BASE:-65c65c8}
AFTER=${AFTER:-HEAD}
DIR=${DIR:-$ROOT/target/journal-bench}
CALLERS=${CALLERS:-1 8 64 256 t8 t64 t256}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WORK=${WORK:-/tmp/journal-bench}
OUT=${OUT:-/dev/stdout}

say() { printf '==> %s\n' "$*" >&2; }

build() { # label commit -> path of the binary
    local label=$1 commit=$2 tree=$WORK/$1
    if [[ ! -d $tree ]]; then
        git -C "$ROOT" worktree add --detach "$tree" "$commit" >&2
    else
        git -C "$tree" checkout -q --detach "$commit"
    fi
    cp "$BENCH/http/src/bin/journal-logouts.rs" "$tree/bench/http/src/bin/"
    say "building journal-logouts at $label ($(git -C "$tree" rev-parse --short HEAD))"
    (cd "$tree/bench/http" && cargo build --quiet --release --bin journal-logouts >&2)
    echo "$tree/bench/http/target/release/journal-logouts"
}

mkdir -p "$WORK" "$DIR"
before=$(build before "$BASE")
after=$(build after "$AFTER")
say "journal directory: $DIR ($(df --output=fstype "$DIR" | tail -1))"
{
    printf 'label\tcallers\tlogouts\tseconds\tlogouts_per_s\tp50_us\tp99_us\tmax_us\terrors\n'
    for round in $(seq "$ROUNDS"); do
        say "round $round/$ROUNDS"
        # shellcheck disable=SC2086
        if ((round % 2)); then
            "$before" before "$DIR" "$DURATION" $CALLERS
            "$after" after "$DIR" "$DURATION" $CALLERS
        else
            "$after" after "$DIR" "$DURATION" $CALLERS
            "$before" before "$DIR" "$DURATION" $CALLERS
        fi
    done
} | tee "$OUT"
