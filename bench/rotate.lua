-- wrk script used by bench/run.py: rotate through a list of paths, send the bearer token, and print one
-- JSON line of results (latency percentiles in microseconds) when the run is done.
--
-- Environment: BENCH_PATHS = file with one request path per line; BENCH_TOKEN = bearer token (optional).

local paths = {}
local counter = 0
local thread_id = 0
local threads = {}

local function load_paths()
  local file = os.getenv("BENCH_PATHS")
  local out = {}
  if file then
    for line in io.lines(file) do
      if #line > 0 then out[#out + 1] = line end
    end
  end
  if #out == 0 then out[1] = "/" end
  return out
end

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  paths = load_paths()
  thread_id = tonumber(id) or 0
  -- Spread the threads over the list so they don't all hit the same path at the same time.
  counter = (thread_id * 7) % #paths
  local token = os.getenv("BENCH_TOKEN")
  if token and #token > 0 then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  wrk.headers["Accept"] = "application/json"
end

function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)))
end
