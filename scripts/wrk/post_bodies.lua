-- wrk script for scripts/bench_ingest.py: POST pre-built bodies (one per line of BODIES_FILE) in
-- a cycle, and write the summary as JSON to SUMMARY_FILE when the run ends.
local path = os.getenv("WEIR_BENCH_PATH") or "/events"
local bodies = {}
for line in io.lines(os.getenv("WEIR_BENCH_BODIES")) do
  bodies[#bodies + 1] = line
end
local index = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  -- each thread starts at another place in the cycle
  index = math.random(#bodies) - 1
end

function request()
  index = index % #bodies + 1
  return wrk.format("POST", path, headers, bodies[index])
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("WEIR_BENCH_SUMMARY"), "w")
  local e = summary.errors
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
  out:close()
end
