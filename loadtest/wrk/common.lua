-- Shared by the wrk scripts: random user ids from the seeded range, the API
-- key header, and a one-line summary (req/s, p50, p99, errors) at the end.
local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local key = os.getenv("BENCH_KEY") or "bench-key"

function user()
  return "bench" .. math.random(1, users)
end

function headers(extra)
  local h = { ["X-API-Key"] = key }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT req/s=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d non2xx_or_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, errors))
end
