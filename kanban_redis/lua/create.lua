-- create: add one or more tasks (Board.create / Board.create_many).
--
-- Guarantees: all specs are checked before anything is written; a spec whose
-- idempotency key is known returns the existing task and writes nothing; a
-- new task gets id = its first rev, lands in triage/todo as asked or, when
-- runnable, in todo (parents open), scheduled (future not_before) or ready.
-- The board's meta hash (incarnation, created_at) is set on first create.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  board name          ARGV[4]  incarnation id to use if the board is new
-- ARGV[5]  JSON array of specs: {title, body?, assignee?, priority, parents[],
--          idempotency_key?, max_attempts, not_before? (ms), status?, metadata? (JSON text), created_by?}
-- Returns  {0, "1 0 ...", state1, state2, ...}: created flags and task JSON, in spec order
--          {TASK_NOT_FOUND, parent id} when a parent does not exist
-- Events   'created' per new task; one log entry with op 'create'.
-- @include "lib"

local g = guard()
if g then return g end

local specs = cjson.decode(ARGV[5])
for _, s in ipairs(specs) do
  for _, p in ipairs(s.parents) do
    if redis.call('EXISTS', key_task(p)) == 0 then return fail(E.TASK_NOT_FOUND, p) end
  end
end

if redis.call('HSETNX', K_META, 'incarnation', ARGV[4]) == 1 then
  redis.call('HSET', K_META, 'created_at', NOW_S)
end

local ids, flags = {}, {}
local optional = {'body', 'assignee', 'idempotency_key', 'not_before', 'metadata', 'created_by'}
for i, s in ipairs(specs) do
  local existing = s.idempotency_key and redis.call('HGET', K_IDEM, s.idempotency_key)
  if existing then
    ids[i], flags[i] = existing, '0'
  else
    local rev = bump()
    -- every value a string formatted once ('%d' for whole numbers): Redis would
    -- format each Lua number it is passed again, at several times the cost
    local id = string.format('%d', rev)
    if s.not_before then s.not_before = string.format('%d', s.not_before) end
    local fields = {'id', id, 'board', ARGV[3], 'title', s.title, 'priority', string.format('%d', s.priority),
      'max_attempts', string.format('%d', s.max_attempts), 'attempts', '0', 'created_at', NOW_S,
      'updated_at', NOW_S, 'rev', id}
    for _, f in ipairs(optional) do
      if s[f] then
        fields[#fields + 1] = f
        fields[#fields + 1] = s[f]
      end
    end
    if #s.parents > 0 then
      fields[#fields + 1] = 'parents'
      fields[#fields + 1] = cjson.encode(s.parents)
    end
    local t = {}
    for j = 1, #fields, 2 do t[fields[j]] = fields[j + 1] end
    local status = s.status
    if not status or status == 'ready' or status == 'scheduled' then status = runnable_status(t) end
    t.status = status
    fields[#fields + 1] = 'status'
    fields[#fields + 1] = status
    redis.call('HSET', key_task(id), unpack(fields))
    cache[id] = t
    mark_touched(id)
    redis.call('ZADD', K_TASKS, id, id)  -- the id is numeric: its own score
    for _, p in ipairs(s.parents) do redis.call('SADD', key_task_children(p), id) end
    if s.idempotency_key then redis.call('HSET', K_IDEM, s.idempotency_key, id) end
    place(id, t, rev)
    record(id, rev, 'created', {status = status})
    ids[i], flags[i] = id, '1'
  end
end

local states = commit('create')
local reply = {0, table.concat(flags, ' ')}
for i, id in ipairs(ids) do
  reply[#reply + 1] = states[id] or cjson.encode(load(id))
end
return reply
