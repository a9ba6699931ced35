-- wrk script for bench/multi.sh: GET /protected with a session cookie picked at random
-- on every request from the NAME=VALUE lines of the file named by $COOKIES: many users,
-- each sending now and then. At random rather than in turn: cycling in step with the
-- balancer's own turn would send token j always to instance j mod N (aliasing), which no
-- real mix of clients does. Requests are formatted once, in init. Ends with the same WRK
-- report line as bench/wrk-report.lua.
local requests_ = {}

init = function(args)
  local path = os.getenv("COOKIES")
  if path == nil then error("set COOKIES to a file of NAME=VALUE lines") end
  for line in io.lines(path) do
    if #line > 0 then
      requests_[#requests_ + 1] = wrk.format("GET", "/protected", { Cookie = line })
    end
  end
  if #requests_ == 0 then error("no cookies in " .. path) end
  math.randomseed(os.time() + (args and #args or 0))
end

request = function()
  return requests_[math.random(#requests_)]
end

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
