#!/usr/bin/env bash
# HTTP load bench of jwt-session (issue 6), in one invocation:
#
#   bash bench/run.sh
#
# 1. builds bench/http (bench-server, denylist-rss, reissue-rate) in release;
# 2. runs ROUNDS interleaved rounds over every mode (round r uses the mode list rotated by
#    r-1, so each mode takes each position once in 5 rounds), each run a fresh server
#    process pinned to CPU 1 and wrk pinned to CPU 0 (when taskset exists), WARMUP seconds
#    of unmeasured load, then DURATION seconds measured: req/s and latency p50/p99 (wrk +
#    bench/wrk-report.lua), server CPU per request (utime+stime delta of /proc/PID/stat over
#    the measured window, divided by the requests wrk completed);
# 3. EXTRA_ROUNDS more rounds with the default reissue-after (60 s), plus `eddsa@0s`
#    (reissue-after 0: every request signs — a client that never stores the new cookie);
# 4. denylist RSS at 1,000,000 revoked sessions, and the simulated reissue rate;
# 5. prints the medians and ratios to bare axum, and writes them as markdown to
#    bench/results/latest.md (raw per-run data in bench/results/latest-raw.tsv).
#
# Environment (defaults): ROUNDS=5 DURATION=10 (s) WARMUP=2 (s) CONNECTIONS=32
# WRK_THREADS=1 REISSUE_AFTER=1h EXTRA_ROUNDS=1 SERVER_CPU=1 LOAD_CPU=0 OUT=bench/results/latest.md
# TARGET_DIR=bench/http/target BENCH_COMMIT=(git HEAD) QUIET=10 (see below)
# RAW_IN=FILE: do not run the load rounds; summarize FILE (a *-raw.tsv of an earlier run)
# instead (the memory and reissue-rate measurements are still made).
#
# On a shared machine other processes take part of the server's CPU in some runs. Each run
# records how much ("others on server's CPU %"); the summary shows medians over all runs and
# over the quiet runs only (others < QUIET %), and judges the targets on the quiet runs when
# every mode has at least 3 of them.
# WAIT_QUIET=0: before each run, wait up to this many seconds for both CPUs (the server's
# and wrk's) to be nearly free of other work (their busy share over a 1 s sample under
# QUIET %), so that more runs are quiet on a shared machine. The run starts anyway when
# the time is up, and is classified as usual.
# NICE=0: nice level of the server and wrk. A negative value (root only) favours them over
# other work on a shared machine — but only within their own scheduling autogroup, so with
# kernel.sched_autogroup_enabled=1 it changes nothing against other sessions' processes.
# The "others on server's CPU %" column shows how much of the server's CPU other work took.
# Only loopback addresses are used; every run is bounded by DURATION.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
REISSUE_AFTER=${REISSUE_AFTER:-1h}
EXTRA_ROUNDS=${EXTRA_ROUNDS:-1}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
OUT=${OUT:-$BENCH/results/latest.md}
QUIET=${QUIET:-10}
WAIT_QUIET=${WAIT_QUIET:-0}
RAW_IN=${RAW_IN:-}
NICE=${NICE:-0}
RAW=${OUT%.md}-raw.tsv
MODES=(bare eddsa eddsa-nocache hs256 tower-sessions)
EXTRA=(bare:60s eddsa:60s eddsa-nocache:60s hs256:60s tower-sessions:60s eddsa:0s)
LUA=$BENCH/wrk-report.lua
TARGET_DIR=${TARGET_DIR:-$BENCH/http/target}
BIN=$TARGET_DIR/release

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

for n in ROUNDS DURATION WARMUP CONNECTIONS WRK_THREADS EXTRA_ROUNDS WAIT_QUIET; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n=${!n} is not a whole number"
done
((ROUNDS >= 1 && DURATION >= 1)) || die "ROUNDS and DURATION must be at least 1"

# --- the load generator -------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        say "installing wrk (apt-get install -y wrk)"
        apt-get install -y wrk >/dev/null 2>&1 ||
            { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; } ||
            die "could not install wrk"
    else
        die "wrk is missing: install it (Debian: apt-get install -y wrk)"
    fi
fi

# --- build ----------------------------------------------------------------------------
say "building bench/http in release"
cargo build --release --manifest-path "$BENCH/http/Cargo.toml" \
    --target-dir "$TARGET_DIR" >&2

# --- pinning --------------------------------------------------------------------------
SERVER_PIN=(nice -n "$NICE")
LOAD_PIN=(nice -n "$NICE")
if command -v taskset >/dev/null 2>&1 && (($(nproc) >= 2)); then
    SERVER_PIN+=(taskset -c "$SERVER_CPU")
    LOAD_PIN+=(taskset -c "$LOAD_CPU")
    PINNING="server on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU (taskset), nice $NICE"
else
    PINNING="none (no taskset or a single CPU), nice $NICE"
fi
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

stop_server() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    SERVER_PID=
}

# run_one ROUND LABEL MODE REISSUE_AFTER: one fresh server, warm-up, one measured wrk run;
# appends a row to $RAW.
run_one() {
    local round=$1 label=$2 mode=$3 reissue=$4 url cookie i t0 t1 line
    # Empty the files here, not only in the background job's redirections: the poll below
    # could otherwise read the previous server's lines before the new job truncates them.
    : >"$WORK/server.out"
    : >"$WORK/server.err"
    ((WAIT_QUIET == 0)) || wait_quiet
    "${SERVER_PIN[@]}" "$BIN/bench-server" "$mode" --addr 127.0.0.1:0 \
        --reissue-after "$reissue" >"$WORK/server.out" 2>"$WORK/server.err" &
    SERVER_PID=$!
    for i in $(seq 300); do
        grep -q '^cookie: ' "$WORK/server.out" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    url=$(sed -n 's/^listening on //p' "$WORK/server.out")
    cookie=$(sed -n 's/^cookie: //p' "$WORK/server.out")
    if [[ -z $url || -z $cookie ]]; then
        local status=running
        kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" && status="exited 0" || status="exited $?"; }
        die "bench-server $mode did not start ($status after $i polls): stdout: $(cat "$WORK/server.out") stderr: $(cat "$WORK/server.err")"
    fi
    "${LOAD_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" \
        -H "Cookie: $cookie" "$url/protected" >/dev/null
    local b0 b1 l0 l1
    b0=$(cpu_busy "$SERVER_CPU")
    l0=$(cpu_busy "$LOAD_CPU")
    children_cpu >"$WORK/w0"
    t0=$(cpu_ticks "$SERVER_PID")
    "${LOAD_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$LUA" \
        -H "Cookie: $cookie" "$url/protected" >"$WORK/wrk.out"
    t1=$(cpu_ticks "$SERVER_PID")
    children_cpu >"$WORK/w1"
    b1=$(cpu_busy "$SERVER_CPU")
    l1=$(cpu_busy "$LOAD_CPU")
    stop_server "$SERVER_PID"
    # Share of the server's CPU that other processes used during the run (meaningful only
    # when the server is pinned): that CPU's busy ticks minus the server's own.
    # Likewise for wrk's CPU: a starved load generator lowers req/s as surely as a
    # starved server (its busy ticks minus wrk's own CPU time).
    local others=nan others_load=nan wrk_secs
    wrk_secs=$(awk -v a="$(cat "$WORK/w0")" -v b="$(cat "$WORK/w1")" 'BEGIN { print b - a }')
    if ((${#SERVER_PIN[@]} > 3)); then
        others=$(awk -v a="$b0" -v b="$b1" -v s=$((t1 - t0)) 'BEGIN {
            split(a, x, " "); split(b, y, " "); total = y[2] - x[2]
            v = (total > 0) ? ((y[1] - x[1]) - s) / total * 100 : 0
            printf "%.1f", (v < 0) ? 0 : v }')
        others_load=$(awk -v a="$l0" -v b="$l1" -v w="$wrk_secs" -v hz="$CLK_TCK" 'BEGIN {
            split(a, x, " "); split(b, y, " "); total = y[2] - x[2]
            v = (total > 0) ? ((y[1] - x[1]) - w * hz) / total * 100 : 0
            printf "%.1f", (v < 0) ? 0 : v }')
    fi
    line=$(grep '^WRK ' "$WORK/wrk.out") || die "no wrk report for $label: $(cat "$WORK/wrk.out")"
    # key=value pairs → a TSV row.
    echo "$line" | awk -v round="$round" -v label="$label" -v dt=$((t1 - t0)) -v hz="$CLK_TCK" \
        -v wrk_cpu="$wrk_secs" -v others="$others" -v others_load="$others_load" '
        {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            errs = v["connect_errors"] + v["read_errors"] + v["write_errors"] + v["timeouts"]
            secs = v["duration_us"] / 1e6
            rps = v["requests"] / secs
            cpu_us = dt / hz * 1e6 / v["requests"]
            util = dt / hz / secs * 100
            printf "%s\t%s\t%.0f\t%.1f\t%.1f\t%.3f\t%.1f\t%d\t%d\t%d\t%.1f\t%s\t%s\n", round, label, rps,
                v["p50_us"], v["p99_us"], cpu_us, util, v["requests"], v["non2xx"], errs,
                wrk_cpu / secs * 100, others, others_load
        }' >>"$RAW"
    local row
    row=$(tail -n1 "$RAW")
    IFS=$'\t' read -r _ _ rps p50 p99 cpu util reqs non2xx errs wrkpct otherpct loadpct <<<"$row"
    ((non2xx == 0)) || die "$label: $non2xx responses were refused (>= 400): the cookie did not work"
    printf '    round %-2s %-20s %8s req/s  p50 %7s µs  p99 %8s µs  CPU %7s µs/req  (server %5s%%, wrk %5s%%, others on CPU %s %5s%% and on CPU %s %5s%%; %s errors)\n' \
        "$round" "$label" "$rps" "$p50" "$p99" "$cpu" "$util" "$wrkpct" "$SERVER_CPU" "$otherpct" "$LOAD_CPU" "$loadpct" "$errs" >&2
}

# --- machine --------------------------------------------------------------------------
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
# BENCH_COMMIT names the source when it is not a git checkout (e.g. a `git archive` copy).
COMMIT=${BENCH_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}
DIRTY=$({ git -C "$ROOT" status --porcelain -- src Cargo.toml 2>/dev/null || true; } | wc -l)

# --- the rounds -----------------------------------------------------------------------
mkdir -p "$(dirname "$RAW")"
if [[ -n $RAW_IN ]]; then
    [[ -f $RAW_IN ]] || die "RAW_IN=$RAW_IN: no such file"
    [[ $RAW_IN -ef $RAW ]] || cp "$RAW_IN" "$RAW"
    ROUNDS=$(awk -F'\t' 'NR > 1 && $1 ~ /^[0-9]+$/ { r[$1] = 1 } END { n = 0; for (k in r) n++; print n }' "$RAW")
    EXTRA_ROUNDS=$(awk -F'\t' 'NR > 1 && $1 ~ /^x/ { r[$1] = 1 } END { n = 0; for (k in r) n++; print n }' "$RAW")
    say "summarizing $RAW_IN ($ROUNDS rounds, $EXTRA_ROUNDS extra) without running the load rounds"
    STARTED="$STARTED, re-summarized from $(basename "$RAW_IN")"
    LOAD_BEFORE="(not recorded for re-summarized runs)"
else
printf 'round\tlabel\trps\tp50_us\tp99_us\tcpu_us_per_req\tserver_cpu_pct\trequests\tnon2xx\terrors\twrk_cpu_pct\tothers_on_server_cpu_pct\tothers_on_load_cpu_pct\n' >"$RAW"
n=${#MODES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${MODES[(i + r - 1) % n]}"); done
    say "round $r/$ROUNDS: ${order[*]} (reissue-after $REISSUE_AFTER)"
    for mode in "${order[@]}"; do
        run_one "$r" "$mode" "$mode" "$REISSUE_AFTER"
    done
done
for ((r = 1; r <= EXTRA_ROUNDS; r++)); do
    say "extra round $r/$EXTRA_ROUNDS: default reissue-after 60 s, and eddsa with reissue-after 0"
    for spec in "${EXTRA[@]}"; do
        run_one "x$r" "${spec%%:*}@${spec#*:}" "${spec%%:*}" "${spec#*:}"
    done
done
fi

# --- memory and reissue rate ----------------------------------------------------------
say "denylist RSS at 1,000,000 revoked sessions"
"${SERVER_PIN[@]}" "$BIN/denylist-rss" 1000000 >"$WORK/rss.out"
say "reissue rate: 100 users x 1 h simulated, 1 request/s each, reissue-after 60 s"
"${SERVER_PIN[@]}" "$BIN/reissue-rate" 100 3600 >"$WORK/reissue.out"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
[[ -z $RAW_IN ]] || LOAD_AFTER="–"
kv() { sed -n "s/^$1=//p" "$2"; }

# --- summary --------------------------------------------------------------------------
# FILTER: empty for every run, "quiet" for the runs where other processes took less than
# QUIET % of the server's CPU.
FILTER=
# values LABEL COLUMN: one value per line, of the rows with that label (and FILTER).
values() {
    awk -F'\t' -v l="$1" -v c="$2" -v f="$FILTER" -v q="$QUIET" '
        NR > 1 && $2 == l && (f == "" || ($12 != "nan" && $12 + 0 < q && ($13 == "" || ($13 != "nan" && $13 + 0 < q)))) { print $c }' "$RAW"
}
median() {
    sort -g | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# per_round_ratio LABEL BASE COLUMN: the ratio LABEL/BASE within each round (both runs
# passing FILTER), one a line.
per_round_ratio() {
    awk -F'\t' -v l="$1" -v b="$2" -v c="$3" -v f="$FILTER" -v q="$QUIET" '
        NR > 1 && (f == "" || ($12 != "nan" && $12 + 0 < q && ($13 == "" || ($13 != "nan" && $13 + 0 < q)))) && $2 == l { x[$1] = $c }
        NR > 1 && (f == "" || ($12 != "nan" && $12 + 0 < q && ($13 == "" || ($13 != "nan" && $13 + 0 < q)))) && $2 == b { y[$1] = $c }
        END { for (r in x) if ((r in y) && y[r] > 0) print x[r] / y[r] }' "$RAW"
}
spread() { sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "–"; exit }
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%.3f [%.3f–%.3f]", m, a[1], a[NR] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "–" }'; }
fmt() { awk -v x="$1" -v d="$2" 'BEGIN { printf "%." d "f", x }'; }

declare -A MED_RPS MED_CPU
table() { # table LABEL... (the first label is the baseline; tower-sessions label as given)
    local base=$1 ts=$2
    shift 2
    echo "| server (same handler) | runs | req/s | × bare | × tower-sessions | p50 µs | p99 µs | CPU µs/req | CPU × bare | server CPU % | wrk CPU % | others on server's CPU % |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    local l rps cpu
    for l in "$@"; do
        rps=$(values "$l" 3 | median)
        cpu=$(values "$l" 6 | median)
        MED_RPS[$l]=$rps
        MED_CPU[$l]=$cpu
    done
    for l in "$@"; do
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$l" \
            "$(values "$l" 3 | wc -l)" \
            "$(fmt "${MED_RPS[$l]}" 0)" \
            "$(ratio "${MED_RPS[$l]}" "${MED_RPS[$base]}")" \
            "$(ratio "${MED_RPS[$l]}" "${MED_RPS[$ts]}")" \
            "$(fmt "$(values "$l" 4 | median)" 0)" \
            "$(fmt "$(values "$l" 5 | median)" 0)" \
            "$(fmt "${MED_CPU[$l]}" 2)" \
            "$(ratio "${MED_CPU[$l]}" "${MED_CPU[$base]}")" \
            "$(fmt "$(values "$l" 7 | median)" 0)" \
            "$(fmt "$(values "$l" 11 | median)" 0)" \
            "$(fmt "$(values "$l" 12 | median)" 0)"
    done
}

extra_labels=()
for spec in "${EXTRA[@]}"; do extra_labels+=("${spec%%:*}@${spec#*:}"); done

# ratios_table: per-round ratios of every mode, under the current FILTER.
ratios_table() {
    echo "| server | rounds | req/s ÷ bare | CPU/req ÷ bare | req/s ÷ tower-sessions |"
    echo "| --- | ---: | --- | --- | --- |"
    local l
    for l in "${MODES[@]}"; do
        printf '| %s | %s | %s | %s | %s |\n' "$l" "$(per_round_ratio "$l" bare 3 | wc -l)" \
            "$(per_round_ratio "$l" bare 3 | spread)" "$(per_round_ratio "$l" bare 6 | spread)" \
            "$(per_round_ratio "$l" tower-sessions 3 | spread)"
    done
}
quiet_runs() { FILTER=quiet values "$1" 3 | wc -l; }
JUDGE=all
if (($(quiet_runs eddsa) >= 3 && $(quiet_runs bare) >= 3 && $(quiet_runs tower-sessions) >= 3)); then
    JUDGE=quiet
fi
{
    echo "# HTTP load bench — latest run"
    echo
    echo "Written by \`bash bench/run.sh\` (started $STARTED). See BENCHMARKS.md for what it means."
    echo
    echo "- machine: $(nproc) CPUs ($CPU_MODEL), $MEM; load average $LOAD_BEFORE before, $LOAD_AFTER after"
    echo "- jwt-session at commit $COMMIT ($DIRTY changed or new files under src/ and Cargo.toml at build time), $(rustc --version), $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2)"
    echo "- ROUNDS=$ROUNDS interleaved rounds (order rotated each round), DURATION=${DURATION}s measured after WARMUP=${WARMUP}s, wrk -t$WRK_THREADS -c$CONNECTIONS, pinning: $PINNING"
    echo "- jwt-session modes: reissue-after $REISSUE_AFTER (no reissue during the runs: the cached path is measured), idle 2 h; each run a fresh server and a fresh login cookie"
    echo "- CPU/req = server utime+stime over the measured window ÷ requests completed; CPU % columns are percent of one CPU over the measured window (server, wrk, and everything else that ran on the server's CPU)"
    echo "- a run is *quiet* when other processes took less than $QUIET % of the server's CPU and less than $QUIET % of wrk's CPU during it (raw files of earlier runs have the server's only); WAIT_QUIET=${WAIT_QUIET}s (each run waited up to that long for both CPUs to be free of other work)"
    echo
    echo "## All runs: medians over $ROUNDS rounds"
    echo
    FILTER=
    table bare tower-sessions "${MODES[@]}"
    echo
    echo "Per-round ratios (median [min–max]; each ratio between two runs of the same round):"
    echo
    ratios_table
    echo
    echo "## Quiet runs only (others < $QUIET % of the server's CPU and of wrk's)"
    echo
    FILTER=quiet
    table bare tower-sessions "${MODES[@]}"
    echo
    echo "Per-round ratios over the rounds where both runs were quiet:"
    echo
    ratios_table
    echo
    echo "## Targets (issue 6), judged on the $JUDGE runs"
    echo
    if [[ $JUDGE == quiet ]]; then FILTER=quiet; else FILTER=; fi
    r1=$(per_round_ratio eddsa bare 3 | median)
    r2=$(per_round_ratio eddsa tower-sessions 3 | median)
    m1=$(ratio "$(values eddsa 3 | median)" "$(values bare 3 | median)")
    m2=$(ratio "$(values eddsa 3 | median)" "$(values tower-sessions 3 | median)")
    c1=$(per_round_ratio eddsa bare 6 | median)
    c2=$(per_round_ratio eddsa tower-sessions 6 | median)
    v1=$(awk -v x="$r1" 'BEGIN { print (x >= 0.93) ? "MET" : "MISSED" }')
    v2=$(awk -v x="$r2" 'BEGIN { print (x >= 1.0) ? "MET" : "MISSED" }')
    echo "- cached EdDSA ≥ 0.93× bare axum req/s: **$v1** — median per-round ratio $(fmt "$r1" 3) (ratio of medians $m1); CPU per request $(fmt "$c1" 3)× bare"
    echo "- cached EdDSA ≥ tower-sessions req/s: **$v2** — median per-round ratio $(fmt "$r2" 3) (ratio of medians $m2); CPU per request $(fmt "$c2" 3)× tower-sessions"
    echo
    FILTER=
    if ((EXTRA_ROUNDS > 0)); then
        echo "## Extra round(s): the default reissue-after 60 s ($EXTRA_ROUNDS round(s), single values are noisier)"
        echo
        echo "With a fresh login at server start and ${DURATION}s runs no token reaches 60 s of age, so \`@60s\` should match the main rounds. \`eddsa@0s\` reissues (signs + Set-Cookie) on every request: the cost when every request is due, e.g. a client that never stores the new cookie once its token is past reissue-after."
        echo
        table bare@60s tower-sessions@60s "${extra_labels[@]}"
        echo
    fi
    echo "## Denylist memory: 1,000,000 revoked sessions (\`denylist-rss\`)"
    echo
    echo "| RSS before | RSS after | delta | per entry | target |"
    echo "| ---: | ---: | ---: | ---: | --- |"
    after_mb=$(kv rss_after_mb "$WORK/rss.out")
    v3=$(awk -v x="$after_mb" 'BEGIN { print (x <= 150) ? "MET" : "MISSED" }')
    printf '| %s KiB | %s KiB (%s MB, %s MiB) | %s KiB | %s B | ≤ 150 MB: **%s** |\n' \
        "$(kv rss_before_kib "$WORK/rss.out")" "$(kv rss_after_kib "$WORK/rss.out")" "$after_mb" \
        "$(kv rss_after_mib "$WORK/rss.out")" "$(kv rss_delta_kib "$WORK/rss.out")" \
        "$(kv bytes_per_entry "$WORK/rss.out")" "$v3"
    echo
    echo "## Reissue rate (\`reissue-rate\`: 100 users × 3600 simulated s, 1 request/s each, reissue-after 60 s)"
    echo
    pct=$(kv reissue_fraction_pct "$WORK/reissue.out")
    v4=$(awk -v x="$pct" 'BEGIN { print (x <= 2) ? "MET" : "MISSED" }')
    echo "| requests | reissues (signatures) | requests per reissue | fraction that sign | most Set-Cookie on one response | target |"
    echo "| ---: | ---: | ---: | ---: | ---: | --- |"
    printf '| %s | %s | %s | %s %% | %s | ≤ 2 %%: **%s** |\n' "$(kv requests "$WORK/reissue.out")" \
        "$(kv reissues "$WORK/reissue.out")" "$(kv requests_per_reissue "$WORK/reissue.out")" "$pct" \
        "$(kv max_set_cookie_per_response "$WORK/reissue.out")" "$v4"
    echo
    echo "## Every run"
    echo
    echo "| round | server | req/s | p50 µs | p99 µs | CPU µs/req | server CPU % | wrk CPU % | others on server's CPU % | others on wrk's CPU % | requests | non-2xx | socket errors |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    tail -n +2 "$RAW" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $11, $12, ($13 == "" ? "–" : $13), $8, $9, $10 }'
} >"$WORK/latest.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/latest.md" "$OUT"
cat "$OUT"
say "written: $OUT and $RAW"
