-- wrk(1) script for Tests/Bench/events.sh: single CloudEvents 1.0 events POSTed to /api/v1/events, each with a new
-- id (so every request is a new event, never an idempotent repeat), taking the sources' bearer tokens in turn.
-- Arguments (after wrk's --): SOURCE=TOKEN ...  Prints one JSON line at the end (events.sh reads it):
-- {"requests", "seconds", "non2xx", "socketErrors", "p50us", "p90us", "p99us", "maxus"}.
local sources = {}
local thread_index = 0

function setup(thread)
  thread_index = thread_index + 1
  thread:set("tid", thread_index)
end

function init(args)
  for _, a in ipairs(args) do
    local name, token = a:match("^([^=]+)=(.+)$")
    if name then table.insert(sources, { name = name, auth = "Bearer " .. token }) end
  end
  n = 0
end

function request()
  n = n + 1
  local s = sources[(n % #sources) + 1]
  local body = string.format(
    '{"specversion":"1.0","id":"wrk-%d-%d","source":"%s","type":"door.opened","time":"%s","subject":"east"}',
    tid, n, s.name, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  return wrk.format("POST", "/api/v1/events",
    { ["Authorization"] = s.auth, ["Content-Type"] = "application/cloudevents+json" }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"non2xx":%d,"socketErrors":%d,"p50us":%d,"p90us":%d,"p99us":%d,"maxus":%d}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
