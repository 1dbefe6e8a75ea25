-- restore_load: load one batch of tasks from a snapshot (snapshot.restore).
--
-- Guarantees: runs only under this restore's marker; each task gets its hash,
-- history, comments and every index entry (tasks, status, lane ready queue
-- with lib's ready_score, scheduled, leases, children, idempotency keys).
-- Loading the same task again replaces it, so a batch can be re-sent.
-- KEYS[1..8]  meta, seq, log, restoring, tasks, leases, scheduled, idem  (see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  marker text (as given to restore_begin)
-- ARGV[4]  JSON array of {fields = {hash field = string}, events = [JSON line], comments = [JSON line]}
-- Returns  {0, tasks loaded} | {RESTORING, current marker} when another restore took over
-- Events   none (history is loaded as it was).
-- @include "lib"

if redis.call('GET', K_RESTORING) ~= ARGV[3] then
  return fail(E.RESTORING, tostring(redis.call('GET', K_RESTORING)))
end

-- Arguments per variadic command: well under Lua's unpack limit, and even,
-- so field/value and score/member pairs are never split.
local CHUNK = 1000

-- cmd key args[1..n], CHUNK arguments at a time (nothing when args is empty).
local function call_chunked(cmd, key, args)
  for i = 1, #args, CHUNK do
    redis.call(cmd, key, unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
end

-- Index entries are gathered for the whole batch and sent as one variadic
-- command per key: entry for entry what lib's place() writes for each task.
local zsets, zkeys = {}, {}
local function zadd(key, score, member)
  local z = zsets[key]
  if not z then
    z = {}
    zsets[key] = z
    zkeys[#zkeys + 1] = key
  end
  z[#z + 1] = score
  z[#z + 1] = member
end

local items = cjson.decode(ARGV[4])
local doomed, idem, lanes = {}, {}, {}
for _, item in ipairs(items) do
  local id = item.fields.id
  doomed[#doomed + 1] = key_task(id)
  doomed[#doomed + 1] = key_task_events(id)
  doomed[#doomed + 1] = key_task_comments(id)
end
for i = 1, #doomed, CHUNK do redis.call('DEL', unpack(doomed, i, math.min(i + CHUNK - 1, #doomed))) end

for _, item in ipairs(items) do
  local t = item.fields
  local id = t.id
  local flat = {}
  for k, v in pairs(t) do
    flat[#flat + 1] = k
    flat[#flat + 1] = v
  end
  call_chunked('HSET', key_task(id), flat)
  call_chunked('RPUSH', key_task_events(id), item.events)
  call_chunked('RPUSH', key_task_comments(id), item.comments)
  zadd(K_TASKS, tonumber(id), id)
  for _, p in ipairs(parents_of(t)) do redis.call('SADD', key_task_children(p), id) end
  if t.idempotency_key then
    idem[#idem + 1] = t.idempotency_key
    idem[#idem + 1] = id
  end
  local s = t.status
  zadd(key_status(s), id, id)
  if s == 'ready' then
    local lane = lane_of(t)
    zadd(key_ready(lane), ready_score(t.priority, tonumber(t.rev)), id)
    lanes[lane] = true
  elseif s == 'scheduled' then
    zadd(K_SCHEDULED, tonumber(t.not_before), id)
  elseif s == 'running' then
    zadd(K_LEASES, tonumber(t.claim_expires_at or NOW), id)
  end
end
for _, key in ipairs(zkeys) do call_chunked('ZADD', key, zsets[key]) end
call_chunked('HSET', K_IDEM, idem)
for lane in pairs(lanes) do redis.call('ZADD', key_signal(lane), 0, 'm') end
return {0, #items}
