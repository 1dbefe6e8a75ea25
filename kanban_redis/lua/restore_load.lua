-- restore_load: load one batch of tasks from a snapshot (snapshot.restore).
--
-- Guarantees: runs only under this restore's marker; each task gets its hash,
-- history, comments and every index entry (tasks, status, lane ready queue
-- with lib's ready_score, scheduled, leases, children, idempotency keys).
-- Loading the same task again replaces it, so a batch can be re-sent.
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

local PUSH_CHUNK = 1000

local function push_all(key, lines)
  for i = 1, #lines, PUSH_CHUNK do
    redis.call('RPUSH', key, unpack(lines, i, math.min(i + PUSH_CHUNK - 1, #lines)))
  end
end

local items = cjson.decode(ARGV[4])
for _, item in ipairs(items) do
  local t = item.fields
  local id = t.id
  redis.call('DEL', key_task(id), key_task_events(id), key_task_comments(id))
  local flat = {}
  for k, v in pairs(t) do
    flat[#flat + 1] = k
    flat[#flat + 1] = v
  end
  redis.call('HSET', key_task(id), unpack(flat))
  push_all(key_task_events(id), item.events)
  push_all(key_task_comments(id), item.comments)
  redis.call('ZADD', K_TASKS, tonumber(id), id)
  for _, p in ipairs(parents_of(t)) do redis.call('SADD', key_task_children(p), id) end
  if t.idempotency_key then redis.call('HSET', K_IDEM, t.idempotency_key, id) end
  if t.status == 'running' and not t.claim_expires_at then t.claim_expires_at = NOW end
  place(id, t, tonumber(t.rev))
end
return {0, #items}
