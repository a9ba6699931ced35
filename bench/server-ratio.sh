#!/usr/bin/env bash
# The simple measurement (issue 14): the example server's protected route against its own
# health check, same process, wrk on loopback.
#
#   bash bench/server-ratio.sh
#
# Builds examples/server.rs in release, starts it once (pinned to SERVER_CPU, the repo's
# development key, a fresh data folder), logs in once as alice (POST /login), then runs
# ROUNDS interleaved rounds (the order flips every round) of DURATION seconds each, after
# WARMUP seconds of unmeasured load, against
#
#   GET /api/me   with the session cookie (the layer verifies it: cache, times, revocation;
#                 the handler answers the session as JSON)
#   GET /healthz  without a cookie (HEALTHZ_COOKIE=1: with it, so the session is verified
#                 there too)
#
# and reports the per-round ratio of req/s (me ÷ healthz): median [min–max], over all
# rounds and over the quiet ones (other processes took less than QUIET % of the server's
# CPU). Also the server's CPU per request. The server runs as shipped (its log filter is
# "info" unless RUST_LOG says otherwise; at INFO the layer opens a span per request) except
# for JWT_SESSION_IDLE=2h and JWT_SESSION_REISSUE_AFTER=1h, so the one login stays valid
# and never reissues during the rounds (as bench/run.sh).
#
# Environment (defaults): ROUNDS=7 DURATION=8 WARMUP=2 CONNECTIONS=32 SERVER_CPU=1
# LOAD_CPU=0 QUIET=10 WAIT_QUIET=0 HEALTHZ_COOKIE=0 OUT=bench/results/server-ratio.md
# (WAIT_QUIET=S: before each run, wait up to S seconds for both CPUs to be nearly free of
# other work, as in bench/run.sh)
# TARGET_DIR=target (the crate's). Loopback only; every run is bounded by DURATION.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
QUIET=${QUIET:-10}
WAIT_QUIET=${WAIT_QUIET:-0}
HEALTHZ_COOKIE=${HEALTHZ_COOKIE:-0}
OUT=${OUT:-$BENCH/results/server-ratio.md}
TARGET_DIR=${TARGET_DIR:-$ROOT/target}
RAW=${OUT%.md}-raw.tsv
LUA=$BENCH/wrk-report.lua

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/server-ratio.sh: %s\n' "$*" >&2; exit 1; }
for n in ROUNDS DURATION WARMUP CONNECTIONS; do
    [[ ${!n} =~ ^[0-9]+$ ]] && ((${!n} >= 1)) || die "$n=${!n} is not a whole number >= 1"
done
for tool in wrk curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install -y $tool)"
done

say "building the example server in release"
cargo build --release --example server --manifest-path "$ROOT/Cargo.toml" --target-dir "$TARGET_DIR" >&2
SERVER=$TARGET_DIR/release/examples/server

SERVER_PIN=()
LOAD_PIN=()
if command -v taskset >/dev/null 2>&1 && (($(nproc) >= 2)); then
    SERVER_PIN=(taskset -c "$SERVER_CPU")
    LOAD_PIN=(taskset -c "$LOAD_CPU")
    PINNING="server on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU"
else
    PINNING="none (no taskset or a single CPU)"
fi
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
PID=
cleanup() {
    if [[ -n $PID ]]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

# --- the server, and one login ----------------------------------------------------------
JWT_SESSION_ADDR=127.0.0.1:0 JWT_SESSION_KEYS="$ROOT/keys" JWT_SESSION_DATA="$WORK/data" \
    JWT_SESSION_IDLE=2h JWT_SESSION_REISSUE_AFTER=1h \
    "${SERVER_PIN[@]}" "$SERVER" >"$WORK/server.out" 2>"$WORK/server.err" &
PID=$!
for _ in $(seq 600); do
    grep -q '^listening on ' "$WORK/server.out" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || die "the server exited: $(tail -n 5 "$WORK/server.err")"
    sleep 0.05
done
URL=$(sed -n 's/^listening on //p' "$WORK/server.out")
[[ -n $URL ]] || die "the server did not start: $(tail -n 5 "$WORK/server.err")"
curl -sf -D "$WORK/login.h" -o "$WORK/login.body" -H 'content-type: application/json' \
    -d '{"username":"alice","password":"wonderland"}' "$URL/login" ||
    die "login failed: $(cat "$WORK/login.body" 2>/dev/null)"
COOKIE=$(sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' "$WORK/login.h" | head -n1)
[[ -n $COOKIE ]] || die "the login set no cookie"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "$URL/api/me") == 200 ]] ||
    die "GET /api/me with the login cookie was not 200"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz") == 200 ]] || die "GET /healthz was not 200"
HEALTH_ARGS=()
HEALTH_LABEL="GET /healthz (no cookie)"
if [[ $HEALTHZ_COOKIE == 1 ]]; then
    HEALTH_ARGS=(-H "Cookie: $COOKIE")
    HEALTH_LABEL="GET /healthz (with the cookie)"
fi
say "server $URL, logged in (cookie ${#COOKIE} bytes)"

# run_one ROUND LABEL PATH [WRK ARGS...]: warm-up, one measured run; a row in $RAW.
run_one() {
    local round=$1 label=$2 path=$3
    shift 3
    ((WAIT_QUIET == 0)) || wait_quiet
    "${LOAD_PIN[@]}" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "$@" "$URL$path" >/dev/null
    local t0 t1 b0 b1 l0 l1 w0 w1 line others=nan others_load=nan
    b0=$(cpu_busy "$SERVER_CPU")
    l0=$(cpu_busy "$LOAD_CPU")
    children_cpu >"$WORK/w0"
    t0=$(cpu_ticks "$PID")
    "${LOAD_PIN[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$LUA" "$@" "$URL$path" >"$WORK/wrk.out"
    t1=$(cpu_ticks "$PID")
    children_cpu >"$WORK/w1"
    b1=$(cpu_busy "$SERVER_CPU")
    l1=$(cpu_busy "$LOAD_CPU")
    w0=$(cat "$WORK/w0")
    w1=$(cat "$WORK/w1")
    line=$(grep '^WRK ' "$WORK/wrk.out") || die "no wrk report: $(cat "$WORK/wrk.out")"
    if ((${#SERVER_PIN[@]} > 0)); then
        others=$(others_pct "$b0" "$b1" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { print t / hz }')")
        others_load=$(others_pct "$l0" "$l1" "$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')")
    fi
    echo "$line" | awk -v round="$round" -v label="$label" -v dt=$((t1 - t0)) -v hz="$CLK_TCK" -v others="$others" -v others_load="$others_load" '
        {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            errs = v["connect_errors"] + v["read_errors"] + v["write_errors"] + v["timeouts"]
            secs = v["duration_us"] / 1e6
            printf "%s\t%s\t%.0f\t%.1f\t%.1f\t%.3f\t%d\t%d\t%d\t%s\t%s\n", round, label,
                v["requests"] / secs, v["p50_us"], v["p99_us"], dt / hz * 1e6 / v["requests"],
                v["requests"], v["non2xx"], errs, others, others_load
        }' >>"$RAW"
    local rps cpu non2xx errs otherpct loadpct
    IFS=$'\t' read -r _ _ rps _ _ cpu _ non2xx errs otherpct loadpct <<<"$(tail -n1 "$RAW")"
    ((non2xx == 0)) || die "$label: $non2xx responses >= 400"
    printf '    round %-2s %-8s %8s req/s  CPU %6s µs/req  (%s socket errors, others on CPU %s %s%% and on CPU %s %s%%)\n' \
        "$round" "$label" "$rps" "$cpu" "$errs" "$SERVER_CPU" "$otherpct" "$LOAD_CPU" "$loadpct" >&2
}

STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
COMMIT=${BENCH_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}
mkdir -p "$(dirname "$RAW")"
printf 'round\tlabel\trps\tp50_us\tp99_us\tcpu_us_per_req\trequests\tnon2xx\terrors\tothers_on_server_cpu_pct\tothers_on_load_cpu_pct\n' >"$RAW"
for ((r = 1; r <= ROUNDS; r++)); do
    say "round $r/$ROUNDS"
    if ((r % 2)); then
        run_one "$r" me /api/me -H "Cookie: $COOKIE"
        run_one "$r" healthz /healthz "${HEALTH_ARGS[@]}"
    else
        run_one "$r" healthz /healthz "${HEALTH_ARGS[@]}"
        run_one "$r" me /api/me -H "Cookie: $COOKIE"
    fi
done

# --- summary --------------------------------------------------------------------------
median() {
    sort -g | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
spread() { sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "–"; exit }
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%.3f [%.3f–%.3f]", m, a[1], a[NR] }'; }
fmt() { awk -v x="$1" -v d="$2" 'BEGIN { printf "%." d "f", x }'; }
# col LABEL COLUMN [quiet]
col() {
    awk -F'\t' -v l="$1" -v c="$2" -v f="${3:-}" -v q="$QUIET" '
        NR > 1 && $2 == l && (f == "" || ($10 != "nan" && $10 + 0 < q && $11 != "nan" && $11 + 0 < q)) { print $c }' "$RAW"
}
# ratio COLUMN [quiet]: me ÷ healthz within each round (both runs passing the filter).
ratio() {
    awk -F'\t' -v c="$1" -v f="${2:-}" -v q="$QUIET" '
        NR > 1 && (f == "" || ($10 != "nan" && $10 + 0 < q && $11 != "nan" && $11 + 0 < q)) && $2 == "me" { a[$1] = $c }
        NR > 1 && (f == "" || ($10 != "nan" && $10 + 0 < q && $11 != "nan" && $11 + 0 < q)) && $2 == "healthz" { b[$1] = $c }
        END { for (r in a) if ((r in b) && b[r] > 0) print a[r] / b[r] }' "$RAW"
}
{
    echo "# Example server: GET /api/me ÷ GET /healthz — latest run"
    echo
    echo "Written by \`bash bench/server-ratio.sh\` (started $STARTED) at commit $COMMIT. See BENCHMARKS.md."
    echo
    echo "- examples/server.rs in release, one process (log filter: ${RUST_LOG:-as shipped, info}), JWT_SESSION_IDLE=2h, JWT_SESSION_REISSUE_AFTER=1h; one login; $(nproc) CPUs, pinning: $PINNING"
    echo "- ROUNDS=$ROUNDS interleaved rounds (order flipped each round), DURATION=${DURATION}s after WARMUP=${WARMUP}s each, wrk -t1 -c$CONNECTIONS; the baseline is $HEALTH_LABEL"
    echo "- a run is quiet when other processes took less than $QUIET % of the server's CPU and of wrk's; WAIT_QUIET=${WAIT_QUIET}s"
    echo
    echo "| route | runs (quiet) | req/s | p50 µs | p99 µs | CPU µs/req |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for l in me healthz; do
        printf '| %s | %s (%s) | %s | %s | %s | %s |\n' \
            "$([[ $l == me ]] && echo 'GET /api/me (cookie)' || echo "$HEALTH_LABEL")" \
            "$(col "$l" 3 | wc -l)" "$(col "$l" 3 quiet | wc -l)" "$(fmt "$(col "$l" 3 | median)" 0)" \
            "$(fmt "$(col "$l" 4 | median)" 0)" "$(fmt "$(col "$l" 5 | median)" 0)" \
            "$(fmt "$(col "$l" 6 | median)" 2)"
    done
    echo
    echo "Per-round ratios, /api/me ÷ /healthz (median [min–max]):"
    echo
    echo "- req/s, all $(ratio 3 | wc -l) rounds: **$(ratio 3 | spread)**; ratio of the medians $(awk -v a="$(col me 3 | median)" -v b="$(col healthz 3 | median)" 'BEGIN { printf "%.3f", a / b }')"
    echo "- req/s, the $(ratio 3 quiet | wc -l) rounds where both runs were quiet: $(ratio 3 quiet | spread)"
    echo "- CPU per request, all rounds: $(ratio 6 | spread)"
    echo
    echo "## Every run"
    echo
    echo "| round | route | req/s | p50 µs | p99 µs | CPU µs/req | requests | non-2xx | socket errors | others on server's CPU % | others on wrk's CPU % |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    tail -n +2 "$RAW" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
} >"$WORK/out.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/out.md" "$OUT"
cat "$OUT"
say "written: $OUT and $RAW"
