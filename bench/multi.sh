#!/usr/bin/env bash
# Several instances behind a round-robin balancer without sticky sessions (issue 14):
#
#   bash bench/multi.sh
#
# Each run starts INSTANCES bench-server `eddsa` processes sharing one Ed25519 key (so any
# instance accepts any token), the first of them logging in SESSIONS times (distinct
# sessions), and bench/http's `balancer` in front of them (per-request round robin). wrk
# sends GET /protected with one of the SESSIONS cookies picked at random per request
# (bench/wrk-cookies.lua), so every token reaches every instance: the first request of a
# token on an instance is a cold verify (signature + claims), the rest hit its
# verified-token cache. Each instance counts its full verifications
# (`jwt_session_cold_verifies_total`, read from its GET /stats before and after the
# measured window).
#
# Each round runs three configurations, in an order rotated every round, all behind the
# balancer: N=1 and N=INSTANCES from empty caches (warm-up, WARMUP s, uses a token outside
# the measured set, so the measured window holds every token's cold verify on every
# instance), and N=INSTANCES *warm*, a control: warm-up sends the measured tokens too, so
# the window holds (almost) no cold verify. Cold vs warm N=INSTANCES is what the cold
# verifies cost; warm N=INSTANCES vs N=1 is what N processes time-sharing one CPU cost by
# themselves (more wake-ups and context switches per request), nothing to do with sessions.
# Every instance is pinned to SERVER_CPU — N instances share the one CPU a single instance
# has, so the comparison is about the extra cold verifies, not about more CPUs — and the
# balancer and wrk to LOAD_CPU.
#
# Environment (defaults): INSTANCES=4 SESSIONS=1000 ROUNDS=3 DURATION=8 WARMUP=2
# CONNECTIONS=32 SERVER_CPU=1 LOAD_CPU=0 QUIET=10 WAIT_QUIET=0 OUT=bench/results/multi.md
# (WAIT_QUIET=S: before each run, wait up to S seconds for both CPUs to be nearly free of
# other work, as in bench/run.sh)
# TARGET_DIR=bench/http/target. Loopback only; every run is bounded by DURATION.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
INSTANCES=${INSTANCES:-4}
SESSIONS=${SESSIONS:-1000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
QUIET=${QUIET:-10}
WAIT_QUIET=${WAIT_QUIET:-0}
OUT=${OUT:-$BENCH/results/multi.md}
TARGET_DIR=${TARGET_DIR:-$BENCH/http/target}
BIN=$TARGET_DIR/release
RAW=${OUT%.md}-raw.tsv

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/multi.sh: %s\n' "$*" >&2; exit 1; }
for n in INSTANCES SESSIONS ROUNDS DURATION WARMUP CONNECTIONS; do
    [[ ${!n} =~ ^[0-9]+$ ]] && ((${!n} >= 1)) || die "$n=${!n} is not a whole number >= 1"
done
for tool in wrk curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install -y $tool)"
done

say "building bench/http in release"
cargo build --release --manifest-path "$BENCH/http/Cargo.toml" --target-dir "$TARGET_DIR" >&2

SERVER_PIN=()
LOAD_PIN=()
if command -v taskset >/dev/null 2>&1 && (($(nproc) >= 2)); then
    SERVER_PIN=(taskset -c "$SERVER_CPU")
    LOAD_PIN=(taskset -c "$LOAD_CPU")
    PINNING="every instance on CPU $SERVER_CPU; balancer and wrk on CPU $LOAD_CPU"
else
    PINNING="none (no taskset or a single CPU)"
fi
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
cleanup() {
    stop_all
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

# wait_url FILE PID: the URL a process printed ("listening on URL").
wait_url() {
    local i
    for i in $(seq 300); do
        grep -q '^listening on ' "$1" 2>/dev/null && break
        kill -0 "$2" 2>/dev/null || die "process $2 exited: $(cat "${1%.out}.err" 2>/dev/null)"
        sleep 0.05
    done
    sed -n 's/^listening on //p' "$1"
}

# start_instance I [EXTRA FLAGS...]: one bench-server; sets URL.
start_instance() {
    local i=$1
    shift
    "${SERVER_PIN[@]}" "$BIN/bench-server" eddsa --addr 127.0.0.1:0 --key "$WORK/key.pem" \
        --count-cold "$@" >"$WORK/s$i.out" 2>"$WORK/s$i.err" &
    PIDS+=($!)
    URL=$(wait_url "$WORK/s$i.out" "$!")
    # Ready once the login cookie is printed (after any --sessions logins).
    local j
    for j in $(seq 600); do
        grep -q '^cookie: ' "$WORK/s$i.out" && break
        sleep 0.05
    done
}

cold_total() { # the instances' summed cold verifies
    local url n=0 v
    for url in "$@"; do
        v=$(curl -sf "$url/stats" | sed -n 's/^cold_verifies=//p')
        [[ -n $v ]] || die "no /stats from $url"
        n=$((n + v))
    done
    echo "$n"
}

# run_one ROUND N WARM: N instances behind the balancer, warm-up (with the measured tokens
# when WARM is 1), one measured wrk run.
run_one() {
    local round=$1 n=$2 warm=$3 i urls=() pids=() url
    ((WAIT_QUIET == 0)) || wait_quiet
    start_instance 1 --sessions "$SESSIONS" --cookies-out "$WORK/cookies"
    urls+=("$URL")
    pids+=("${PIDS[-1]}")
    for ((i = 2; i <= n; i++)); do
        start_instance "$i"
        urls+=("$URL")
        pids+=("${PIDS[-1]}")
    done
    ((n > 1)) || true
    local warm_cookie
    warm_cookie=$(sed -n 's/^cookie: //p' "$WORK/s1.out")
    [[ $(wc -l <"$WORK/cookies") -eq $SESSIONS ]] || die "expected $SESSIONS cookies"
    grep -qxF "$warm_cookie" "$WORK/cookies" && die "the warm-up cookie is one of the measured ones"
    "${LOAD_PIN[@]}" "$BIN/balancer" --addr 127.0.0.1:0 "${urls[@]}" >"$WORK/b.out" 2>"$WORK/b.err" &
    PIDS+=($!)
    local lb
    lb=$(wait_url "$WORK/b.out" "$!")
    if ((warm)); then
        COOKIES="$WORK/cookies" "${LOAD_PIN[@]}" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" \
            -s "$BENCH/wrk-cookies.lua" "$lb/protected" >/dev/null
    else
        "${LOAD_PIN[@]}" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "Cookie: $warm_cookie" "$lb/protected" >/dev/null
    fi
    local c0 c1 t0=0 t1=0 pid b0 b1 l0 l1 g0 g1 w0 w1 lbpid=${PIDS[-1]}
    c0=$(cold_total "${urls[@]}")
    b0=$(cpu_busy "$SERVER_CPU")
    l0=$(cpu_busy "$LOAD_CPU")
    children_cpu >"$WORK/w0"
    g0=$(cpu_ticks "$lbpid")
    for pid in "${pids[@]}"; do t0=$((t0 + $(cpu_ticks "$pid"))); done
    COOKIES="$WORK/cookies" "${LOAD_PIN[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" \
        -s "$BENCH/wrk-cookies.lua" "$lb/protected" >"$WORK/wrk.out"
    for pid in "${pids[@]}"; do t1=$((t1 + $(cpu_ticks "$pid"))); done
    g1=$(cpu_ticks "$lbpid")
    children_cpu >"$WORK/w1"
    b1=$(cpu_busy "$SERVER_CPU")
    l1=$(cpu_busy "$LOAD_CPU")
    c1=$(cold_total "${urls[@]}")
    w0=$(cat "$WORK/w0")
    w1=$(cat "$WORK/w1")
    stop_all
    local line others=nan others_load=nan
    line=$(grep '^WRK ' "$WORK/wrk.out") || die "no wrk report: $(cat "$WORK/wrk.out")"
    if ((${#SERVER_PIN[@]} > 0)); then
        others=$(others_pct "$b0" "$b1" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { print t / hz }')")
        # On the load CPU, ours are wrk and the balancer.
        others_load=$(others_pct "$l0" "$l1" "$(awk -v a="$w0" -v b="$w1" -v g=$((g1 - g0)) -v hz="$CLK_TCK" 'BEGIN { print b - a + g / hz }')")
    fi
    local label=$n
    ((warm)) && label="${n}w"
    echo "$line" | awk -v round="$round" -v n="$label" -v dt=$((t1 - t0)) -v hz="$CLK_TCK" \
        -v cold=$((c1 - c0)) -v n_inst="$n" -v sessions="$SESSIONS" -v others="$others" -v others_load="$others_load" '
        {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            errs = v["connect_errors"] + v["read_errors"] + v["write_errors"] + v["timeouts"]
            secs = v["duration_us"] / 1e6
            printf "%s\t%s\t%.0f\t%.1f\t%.1f\t%.3f\t%d\t%d\t%.3f\t%.3f\t%d\t%d\t%s\t%s\n", round, n,
                v["requests"] / secs, v["p50_us"], v["p99_us"], dt / hz * 1e6 / v["requests"],
                v["requests"], cold, cold / v["requests"] * 100, cold / (n_inst * sessions),
                v["non2xx"], errs, others, others_load
        }' >>"$RAW"
    local row
    row=$(tail -n1 "$RAW")
    IFS=$'\t' read -r _ _ rps p50 p99 cpu reqs cold share per non2xx errs otherpct loadpct <<<"$row"
    ((non2xx == 0)) || die "N=$n: $non2xx responses were refused"
    printf '    round %s N=%-3s %8s req/s  p50 %6s µs  p99 %7s µs  CPU %6s µs/req (all instances)  cold verifies %s (%s %% of %s requests; %s per token per instance)  errors %s, others on CPU %s %s%% and on CPU %s %s%%\n' \
        "$round" "$label" "$rps" "$p50" "$p99" "$cpu" "$cold" "$share" "$reqs" "$per" "$errs" "$SERVER_CPU" "$otherpct" "$LOAD_CPU" "$loadpct" >&2
}

STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
COMMIT=${BENCH_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}
mkdir -p "$(dirname "$RAW")"
printf 'round\tinstances\trps\tp50_us\tp99_us\tcpu_us_per_req\trequests\tcold_verifies\tcold_pct\tcold_per_token_per_instance\tnon2xx\terrors\tothers_on_server_cpu_pct\tothers_on_load_cpu_pct\n' >"$RAW"
CONFIGS=("1 0" "$INSTANCES 0" "$INSTANCES 1")
for ((r = 1; r <= ROUNDS; r++)); do
    order=()
    for ((i = 0; i < 3; i++)); do order+=("${CONFIGS[(i + r - 1) % 3]}"); done
    say "round $r/$ROUNDS: (instances, warm) = $(printf '(%s) ' "${order[@]}")"
    for spec in "${order[@]}"; do
        read -r n w <<<"$spec"
        run_one "$r" "$n" "$w"
    done
done

# --- summary --------------------------------------------------------------------------
median() {
    sort -g | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# col N COLUMN [quiet]: the values of the runs with N instances.
col() {
    awk -F'\t' -v n="$1" -v c="$2" -v f="${3:-}" -v q="$QUIET" '
        NR > 1 && $2 == n && (f == "" || ($13 != "nan" && $13 + 0 < q && $14 != "nan" && $14 + 0 < q)) { print $c }' "$RAW"
}
# per_round COLUMN A B: the A / B ratio of COLUMN within each round (labels 1, N, Nw).
per_round() {
    awk -F'\t' -v c="$1" -v x="$2" -v y="$3" '
        NR > 1 && $2 == x { a[$1] = $c } NR > 1 && $2 == y { b[$1] = $c }
        END { for (r in a) if ((r in b) && b[r] > 0) print a[r] / b[r] }' "$RAW"
}
# per_round_diff COLUMN A B: A − B within each round.
per_round_diff() {
    awk -F'\t' -v c="$1" -v x="$2" -v y="$3" '
        NR > 1 && $2 == x { a[$1] = $c } NR > 1 && $2 == y { b[$1] = $c }
        END { for (r in a) if (r in b) print a[r] - b[r] }' "$RAW"
}
spread() { sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "–"; exit }
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%.3f [%.3f–%.3f]", m, a[1], a[NR] }'; }
fmt() { awk -v x="$1" -v d="$2" 'BEGIN { printf "%." d "f", x }'; }
quiet_count() { col "$1" 3 quiet | wc -l; }
{
    echo "# Multi-instance bench — latest run"
    echo
    echo "Written by \`bash bench/multi.sh\` (started $STARTED) at commit $COMMIT. See BENCHMARKS.md."
    echo
    echo "- $INSTANCES instances vs 1, both behind bench/http's round-robin balancer (per request, no sticky sessions); $SESSIONS sessions, a random one per request; ROUNDS=$ROUNDS (order flipped each round), DURATION=${DURATION}s after WARMUP=${WARMUP}s with a token outside the measured set; wrk -t1 -c$CONNECTIONS"
    echo "- pinning: $PINNING; CPU/req sums the CPU time of every instance; a run is quiet when other processes took less than $QUIET % of the instances' CPU and of the load CPU (wrk and the balancer); WAIT_QUIET=${WAIT_QUIET}s"
    echo
    echo "| instances | caches | runs (quiet) | req/s | p50 µs | p99 µs | CPU µs/req | cold verifies | of requests | per token per instance |"
    echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for n in 1 "$INSTANCES" "${INSTANCES}w"; do
        printf '| %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s %% | %s |\n' "${n%w}" \
            "$([[ $n == *w ]] && echo "warm (control)" || echo "empty at start")" "$(col "$n" 3 | wc -l)" \
            "$(quiet_count "$n")" "$(fmt "$(col "$n" 3 | median)" 0)" "$(fmt "$(col "$n" 4 | median)" 0)" \
            "$(fmt "$(col "$n" 5 | median)" 0)" "$(fmt "$(col "$n" 6 | median)" 2)" \
            "$(fmt "$(col "$n" 8 | median)" 0)" "$(fmt "$(col "$n" 9 | median)" 3)" \
            "$(fmt "$(col "$n" 10 | median)" 2)"
    done
    echo
    echo "Medians over all runs. Per round (median [min–max]):"
    echo
    echo "- N=$INSTANCES ÷ N=1: req/s $(per_round 3 "$INSTANCES" 1 | spread); CPU per request $(per_round 6 "$INSTANCES" 1 | spread)"
    echo "- N=$INSTANCES ÷ N=1: cold verifies $(per_round 8 "$INSTANCES" 1 | spread); share of requests that are cold verifies $(per_round 9 "$INSTANCES" 1 | spread)"
    echo "- what the cold verifies cost at N=$INSTANCES (÷ the warm control): req/s $(per_round 3 "$INSTANCES" "${INSTANCES}w" | spread); CPU per request $(per_round 6 "$INSTANCES" "${INSTANCES}w" | spread), +$(fmt "$(per_round_diff 6 "$INSTANCES" "${INSTANCES}w" | median)" 2) µs per request"
    echo "- what $INSTANCES processes on one CPU cost by themselves (warm control ÷ N=1): req/s $(per_round 3 "${INSTANCES}w" 1 | spread); CPU per request $(per_round 6 "${INSTANCES}w" 1 | spread)"
    echo
    echo "## Every run"
    echo
    echo "| round | instances | req/s | p50 µs | p99 µs | CPU µs/req | requests | cold verifies | cold % | per token per instance | non-2xx | errors | others on server CPU % | others on load CPU % |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    tail -n +2 "$RAW" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 }'
} >"$WORK/multi.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/multi.md" "$OUT"
cat "$OUT"
say "written: $OUT and $RAW"
