-- restore_load: load one batch of tasks from a snapshot (snapshot.restore).
--
-- Guarantees: runs only under this restore's marker; each task gets its hash,
-- history, comments and every index entry (tasks, status, lane ready queue
-- with lib's ready_score, scheduled, leases, children, idempotency keys).
-- A batch sent again replaces what it loaded (the board is wiped before the
-- first batch and a batch runs whole or not at all), so a batch can be re-sent.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
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

-- cmd key args[1..n], CHUNK arguments at a time (nothing when n is 0).
local function call_chunked(cmd, key, args, n)
  for i = 1, n, CHUNK do
    redis.call(cmd, key, unpack(args, i, math.min(i + CHUNK - 1, n)))
  end
end

local items = cjson.decode(ARGV[4])
if #items == 0 then return {0, 0} end

-- A batch runs whole or not at all, and the board was wiped before the
-- first one: its first task's hash exists only if this batch was sent before.
if redis.call('EXISTS', key_task(items[1].fields.id)) == 1 then
  for _, item in ipairs(items) do
    local id = item.fields.id
    redis.call('DEL', key_task(id), key_task_events(id), key_task_comments(id))
  end
end

-- Index entries are gathered for the whole batch (lib's place() adds them
-- through zadd) and sent as one variadic command per key.
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

local idem, flat = {}, {}
for _, item in ipairs(items) do
  local t = item.fields
  local id = t.id
  local n = 0
  for k, v in pairs(t) do
    flat[n + 1] = k
    flat[n + 2] = v
    n = n + 2
  end
  call_chunked('HSET', key_task(id), flat, n)
  call_chunked('RPUSH', key_task_events(id), item.events, #item.events)
  call_chunked('RPUSH', key_task_comments(id), item.comments, #item.comments)
  zadd(K_TASKS, id, id)  -- the id is numeric: its own score
  for _, p in ipairs(parents_of(t)) do redis.call('SADD', key_task_children(p), id) end
  if t.idempotency_key then
    idem[#idem + 1] = t.idempotency_key
    idem[#idem + 1] = id
  end
  -- a running task without a lease (a snapshot carries none) expires now: restore_end requeues it
  if t.status == 'running' and not t.claim_expires_at then t.claim_expires_at = NOW_S end
  place(id, t, tonumber(t.rev), zadd)
end
for _, key in ipairs(zkeys) do call_chunked('ZADD', key, zsets[key], #zsets[key]) end
call_chunked('HSET', K_IDEM, idem, #idem)
return {0, #items}
