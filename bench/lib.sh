# Shared by bench/run.sh, bench/multi.sh and bench/server-ratio.sh (sourced): CPU
# accounting from /proc and waiting for a quiet machine.
#
# Needs, set by the caller: WORK (a scratch directory), CLK_TCK (clock ticks per second),
# SERVER_CPU and LOAD_CPU (the CPUs the server and the load run on), QUIET (the % of a
# CPU below which it counts as quiet) and WAIT_QUIET (the most seconds to wait for it).

# utime + stime of a process (all its threads), in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# "busy total" clock ticks of one CPU (busy: user nice system irq softirq steal).
cpu_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# CPU seconds of this shell's reaped children (user + system), from `times` (run in this
# shell, not in a $(…) subshell, whose children would be its own).
children_cpu() {
    times >"$WORK/times"
    tail -n1 "$WORK/times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); n += a[1] * 60 + a[2] } printf "%.3f", n }'
}
# others_pct BUSY0 BUSY1 OURS_SECONDS: % of a CPU's time other processes were busy on it.
others_pct() {
    awk -v a="$1" -v b="$2" -v w="$3" -v hz="$CLK_TCK" 'BEGIN {
        split(a, x, " "); split(b, y, " "); total = y[2] - x[2]
        v = (total > 0) ? ((y[1] - x[1]) - w * hz) / total * 100 : 0
        printf "%.1f", (v < 0) ? 0 : v }'
}
# wait_quiet: up to WAIT_QUIET seconds, until both CPUs were busy less than QUIET % over
# one second.
wait_quiet() {
    local waited a0 b0 a1 b1
    for ((waited = 0; waited < WAIT_QUIET; waited++)); do
        a0=$(cpu_busy "$SERVER_CPU")
        b0=$(cpu_busy "$LOAD_CPU")
        sleep 1
        a1=$(cpu_busy "$SERVER_CPU")
        b1=$(cpu_busy "$LOAD_CPU")
        awk -v a0="$a0" -v a1="$a1" -v b0="$b0" -v b1="$b1" -v q="$QUIET" 'BEGIN {
            split(a0, x, " "); split(a1, y, " "); split(b0, u, " "); split(b1, v, " ")
            sa = (y[2] > x[2]) ? (y[1] - x[1]) / (y[2] - x[2]) * 100 : 0
            sb = (v[2] > u[2]) ? (v[1] - u[1]) / (v[2] - u[2]) * 100 : 0
            exit !(sa < q && sb < q) }' && return 0
    done
    return 0
}
