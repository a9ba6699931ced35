-- wrk reporter for bench/run.sh: prints one parseable line after wrk's own summary.
-- Latencies are in microseconds; non2xx counts responses with status >= 400 (wrk's
-- "Non-2xx or 3xx responses"), which would mean the cookie was refused.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d bytes=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d timeouts=%d non2xx=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f " ..
    "max_us=%.0f mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
