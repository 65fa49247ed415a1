-- wrk script for bench_serve.sh: optional POST body for /v1/rank (set with
-- the RANK_BODY_FILE environment variable), and a one-line latency summary
-- (percentiles in milliseconds) that the shell script parses.
local body_file = os.getenv("RANK_BODY_FILE")
if body_file then
  local f = assert(io.open(body_file, "r"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  wrk.headers["Content-Type"] = "application/json"
  f:close()
end

done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "wrk: requests=%d rate=%.0f p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f ms errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, errors))
end
