-- wrk script for `python -m loadtest sustained`: POST /api/reservations {"dropId": D} with the
-- bearer token of user i, i round robin over many users (each thread starts at its own offset).
--
-- Environment (read in every Lua state wrk makes):
--   SUSTAINED_TOKENS  file with one token per line
--   SUSTAINED_DROP    the drop's id
--   SUSTAINED_OUT     path prefix: thread k appends every 201's reservation id to OUT.ids.k,
--                     and done() writes OUT.json (latency percentiles, counts, statuses)
--   SUSTAINED_MAX     stop a thread after this many responses (0 = run for -d)
--
-- Every response goes through response(): that costs wrk some CPU per request, which is why
-- the harness reports wrk's CPU beside the server's.

local tokens_path = os.getenv("SUSTAINED_TOKENS")
local drop_id = tonumber(os.getenv("SUSTAINED_DROP"))
local out = os.getenv("SUSTAINED_OUT")
local max_responses = tonumber(os.getenv("SUSTAINED_MAX") or "0") or 0

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

local requests = {}
local next_request = 0
local statuses = {}
local responses = 0
local ids_file = nil

function init(args)
  local body = '{"dropId":' .. string.format("%d", drop_id) .. '}'
  for token in io.lines(tokens_path) do
    if token ~= "" then
      requests[#requests + 1] = wrk.format("POST", "/api/reservations", {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
      }, body)
    end
  end
  -- Threads start apart, so two threads do not send the same user at the same moment.
  next_request = ((thread_id or 1) - 1) * 997 % #requests
  ids_file = assert(io.open(out .. ".ids." .. (thread_id or 1), "w"))
  statuses_seen = statuses -- a global, so that done() can read it with thread:get
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

-- Answers per wall-clock second and status, for the per-second charts of --report: one flat
-- table keyed "second:status" (done() reads it with thread:get, which copies flat tables).
per_second = {}

function response(status, headers, body)
  responses = responses + 1
  statuses[status] = (statuses[status] or 0) + 1
  local key = os.time() .. ":" .. status
  per_second[key] = (per_second[key] or 0) + 1
  if status == 201 then
    local id = string.match(body, '"reservation":{"id":(%d+)')
    ids_file:write(id or "?", "\n")
  end
  if max_responses > 0 and responses >= max_responses then
    ids_file:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency)
  local parts = {}
  local status_parts = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses_seen") or {}
    for status, n in pairs(seen) do
      status_parts[status] = (status_parts[status] or 0) + n
    end
  end
  for status, n in pairs(status_parts) do
    parts[#parts + 1] = string.format('"%d":%d', status, n)
  end
  local seconds = {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("per_second") or {}) do
      seconds[key] = (seconds[key] or 0) + n
    end
  end
  local second_parts = {}
  for key, n in pairs(seconds) do
    second_parts[#second_parts + 1] = string.format('"%s":%d', key, n)
  end
  local e = summary.errors
  local f = assert(io.open(out .. ".json", "w"))
  f:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},' ..
    '"statuses":{%s},"per_second":{%s},"threads":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    table.concat(parts, ","), table.concat(second_parts, ","), #threads))
  f:close()
end
