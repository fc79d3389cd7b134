-- POST the JSON body in the file named by the NBI_BODY environment variable, with a fresh
-- citizen id per request (so each request is a new decision, not an idempotent replay, and a
-- first spell: NBI_RUN, unique per wrk run, keeps the ids of one run apart from the last's,
-- which would otherwise come back as returning citizens with a history to read).
local f = assert(io.open(os.getenv("NBI_BODY"), "r"))
local template = f:read("*a")
f:close()
local api_key = os.getenv("NBI_KEY") or ""
local run = os.getenv("NBI_RUN") or ""
local counter = 0

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local body = string.gsub(template, "__CITIZEN__", string.format("c%s-%d-%d", run, thread_id, counter))
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-API-Key"] = api_key
  headers["Authorization"] = "Bearer " .. api_key
  return wrk.format("POST", wrk.path, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("JSON {\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"requests\": %d, \"duration_s\": %.3f, \"non2xx\": %d, \"errors\": %d}\n",
    latency:percentile(50) / 1000.0, latency:percentile(99) / 1000.0, summary.requests,
    summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
