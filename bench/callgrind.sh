#!/usr/bin/env bash
# Deterministic companion of bench/run.sh: user-space instructions per request of each
# bench-server mode, counted by valgrind's callgrind (no timing noise from other work on the
# machine; kernel time — the loopback TCP stack — is not counted).
#
#   bash bench/callgrind.sh            # after bench/run.sh has built bench/http
#
# For each mode: start bench-server under callgrind (server on CPU 1, wrk on CPU 0 when
# taskset exists), send WARMUP seconds of load, zero the counters, send DURATION seconds of
# load (wrk, 8 connections), dump, and divide the instructions by the requests served.
# Writes bench/results/callgrind.md (and keeps the callgrind files in bench/results/callgrind/,
# which git ignores) with the jwt-session functions' inclusive cost per request for `eddsa`.
#
# Two figures per mode:
# - instructions/request: every user-space instruction of the process over the window,
#   divided by the requests served;
# - in connection task: only those under hyper's connection future (parsing, routing, the
#   layer, the handler, writing the response), i.e. without the runtime's idle work
#   (parking, epoll). The first moves by ~±100 with the load of other processes on the
#   machine (fewer requests per wake-up when wrk is starved of CPU); the second much less,
#   so compare modes on it when the machine is shared.
# `noop-layer` is bare axum with an identity tower layer under `Router::layer`: what axum's
# extra boxed route level costs any middleware.
#
# Environment (defaults): DURATION=10 WARMUP=3
# MODES="bare noop-layer eddsa eddsa-nocache hs256 tower-sessions"
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$BENCH/http/target/release
OUT_DIR=$BENCH/results/callgrind
OUT=$BENCH/results/callgrind.md
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
read -r -a MODES <<<"${MODES:-bare noop-layer eddsa eddsa-nocache hs256 tower-sessions}"

die() { printf 'bench/callgrind.sh: %s\n' "$*" >&2; exit 1; }
[[ -x $BIN/bench-server ]] || die "build first: bash bench/run.sh (or cargo build --release in bench/http)"
for tool in valgrind callgrind_annotate callgrind_control wrk; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install -y valgrind wrk)"
done
SERVER_PIN=()
LOAD_PIN=()
if command -v taskset >/dev/null 2>&1 && (($(nproc) >= 2)); then
    SERVER_PIN=(taskset -c 1)
    LOAD_PIN=(taskset -c 0)
fi
mkdir -p "$OUT_DIR"
printf '/*\n' >"$OUT_DIR/.gitignore"

declare -A IR REQS TASK
for mode in "${MODES[@]}"; do
    rm -f "$OUT_DIR/$mode".*
    "${SERVER_PIN[@]}" valgrind --tool=callgrind --callgrind-out-file="$OUT_DIR/$mode.%p" \
        "$BIN/bench-server" "$mode" >"$OUT_DIR/$mode.server.out" 2>"$OUT_DIR/$mode.server.err" &
    pid=$!
    for _ in $(seq 600); do
        grep -q '^cookie: ' "$OUT_DIR/$mode.server.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || die "$mode did not start: $(tail -n 5 "$OUT_DIR/$mode.server.err")"
        sleep 0.1
    done
    url=$(sed -n 's/^listening on //p' "$OUT_DIR/$mode.server.out")
    cookie=$(sed -n 's/^cookie: //p' "$OUT_DIR/$mode.server.out")
    "${LOAD_PIN[@]}" wrk -t1 -c8 -d"${WARMUP}s" --timeout 10s -H "Cookie: $cookie" "$url/protected" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    "${LOAD_PIN[@]}" wrk -t1 -c8 -d"${DURATION}s" --timeout 10s -s "$BENCH/wrk-report.lua" \
        -H "Cookie: $cookie" "$url/protected" >"$OUT_DIR/$mode.wrk.out"
    callgrind_control -d "$pid" >/dev/null 2>&1
    sleep 1
    kill -TERM "$pid"
    wait "$pid" || true
    line=$(grep '^WRK ' "$OUT_DIR/$mode.wrk.out") || die "no wrk report for $mode"
    [[ $line == *" non2xx=0 "* ]] || die "$mode: refused responses: $line"
    REQS[$mode]=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$line")
    file=$(ls -t "$OUT_DIR/$mode".*.1 | head -n1)
    mv "$file" "$OUT_DIR/$mode.callgrind"
    rm -f "$OUT_DIR/$mode".[0-9]*
    IR[$mode]=$(callgrind_annotate "$OUT_DIR/$mode.callgrind" 2>/dev/null |
        awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
    # Inclusive cost of hyper's connection future (the largest of its entries: callgrind
    # lists inlined parts of one function once per source file).
    TASK[$mode]=$(callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$OUT_DIR/$mode.callgrind" 2>/dev/null |
        awk '/UpgradeableConnection<I,S> as core::future::future::Future>::poll/ {
            x = $1; gsub(",", "", x); if (x + 0 > m) m = x + 0 } END { print m + 0 }')
    printf '%-16s %8s requests  %10.0f instructions/request  %10.0f in connection task\n' "$mode" \
        "${REQS[$mode]}" "$(awk -v a="${IR[$mode]}" -v b="${REQS[$mode]}" 'BEGIN { print a / b }')" \
        "$(awk -v a="${TASK[$mode]}" -v b="${REQS[$mode]}" 'BEGIN { print a / b }')" >&2
done

per_req() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a / b }'; }
{
    echo "# Instructions per request (callgrind)"
    echo
    echo "Written by \`bash bench/callgrind.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC')). User-space instructions"
    echo "of the bench server per request over ${DURATION}s of wrk load (8 connections) after ${WARMUP}s of"
    echo "warm-up; the kernel's share (loopback TCP, most of a trivial request's cost) is not counted."
    echo "No timing noise, but not exactly repeatable: the runtime's idle work per request (parking,"
    echo "epoll) depends on how many requests each wake-up finds, which other work on the machine"
    echo "changes (±100 or so). The *in connection task* column leaves that work out."
    echo
    echo "| server (same handler) | requests | instructions/request | × bare | − bare | in connection task | − bare |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    base=$(per_req "${IR[bare]:-0}" "${REQS[bare]:-1}")
    tbase=$(per_req "${TASK[bare]:-0}" "${REQS[bare]:-1}")
    for mode in "${MODES[@]}"; do
        n=$(per_req "${IR[$mode]}" "${REQS[$mode]}")
        t=$(per_req "${TASK[$mode]}" "${REQS[$mode]}")
        printf '| %s | %s | %s | %s | %+d | %s | %+d |\n' "$mode" "${REQS[$mode]}" "$n" \
            "$(awk -v a="$n" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }')" \
            "$((n - base))" "$t" "$((t - tbase))"
    done
    if [[ -n ${IR[eddsa]:-} ]]; then
        echo
        echo "## Where \`eddsa\` (cached) spends them: jwt-session and its callees, inclusive, per request"
        echo
        echo "| instructions/request | function |"
        echo "| ---: | --- |"
        callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$OUT_DIR/eddsa.callgrind" 2>/dev/null |
            awk -v n="${REQS[eddsa]}" '/^ *[0-9,]+ \(/ && /jwt_session|quick_cache|dashmap|tracing::span|bench_server::protected|http::extensions::Extensions::(insert|get)/ {
                x = $1; gsub(",", "", x); $1 = ""; $2 = ""; sub(/^ +/, ""); sub(/ \[.*\]$/, "")
                sub(/^[^:]*:/, "")
                if (x / n >= 20 && !seen[$0]++) printf "| %.0f | `%s` |\n", x / n, substr($0, 1, 150) }' |
            head -n 30
    fi
} >"$OUT"
cat "$OUT"
