#!lua name=minimal_lifecycle
-- minimal_lifecycle: the floor of bench/claims.py's Redis CPU figure.
--
-- The three transitions of a task lifecycle with only what any design that
-- keeps the board's contract needs: a hash per task, one ready queue, a lease
-- index, the seq and one change-log entry with the task's full new state per
-- transition. None of the board's features: no lanes, priorities, wake-up
-- signals, per-status indexes, idempotency keys, parents, per-task history,
-- housekeeping or restore guard. Its cost per lifecycle, measured in the same
-- run as the board's, says how much of the board's cost the features are.
--
-- Every function:
-- KEYS[1]  seq (string)      KEYS[2]  ready queue (zset)
-- KEYS[3]  leases (zset)     KEYS[4]  change log (stream)
-- ARGV[1]  task key prefix
-- minimal_create   ARGV[2] title                      -> task JSON
-- minimal_claim    ARGV[2] token  ARGV[3] ttl ms      -> task JSON, or false when nothing is ready
-- minimal_complete ARGV[2] id     ARGV[3] token       -> task JSON, or an error reply for a stale token

local function now_ms()
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end

local function load(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- Writes the changed fields, then logs the full state under the new seq.
local function commit(keys, key, t, op, rev, ...)
  redis.call('HSET', key, ...)
  local state = cjson.encode(t)
  redis.call('XADD', keys[4], 'MAXLEN', '~', 100000, rev .. '-0', 'op', op, 'tasks', '[' .. state .. ']')
  return state
end

redis.register_function('minimal_create', function(keys, args)
  local now = now_ms()
  local id = string.format('%d', redis.call('INCR', keys[1]))
  local t = {id = id, title = args[2], status = 'ready', attempts = '0', created_at = now, updated_at = now, rev = id}
  redis.call('ZADD', keys[2], id, id)
  return commit(keys, args[1] .. id, t, 'create', id, 'id', id, 'title', args[2], 'status', 'ready',
    'attempts', '0', 'created_at', now, 'updated_at', now, 'rev', id)
end)

redis.register_function('minimal_claim', function(keys, args)
  local head = redis.call('ZPOPMIN', keys[2])
  if #head == 0 then return false end
  local now = now_ms()
  local id = head[1]
  local t = load(args[1] .. id)
  local rev = string.format('%d', redis.call('INCR', keys[1]))
  local expires = string.format('%d', tonumber(now) + tonumber(args[3]))
  t.status, t.attempts, t.claim_token, t.claim_expires_at, t.updated_at, t.rev =
    'running', string.format('%d', tonumber(t.attempts) + 1), args[2], expires, now, rev
  redis.call('ZADD', keys[3], expires, id)
  return commit(keys, args[1] .. id, t, 'claim', rev, 'status', 'running', 'attempts', t.attempts,
    'claim_token', args[2], 'claim_expires_at', expires, 'updated_at', now, 'rev', rev)
end)

redis.register_function('minimal_complete', function(keys, args)
  local id = args[2]
  local t = load(args[1] .. id)
  if t.status ~= 'running' or t.claim_token ~= args[3] then return redis.error_reply('STALE') end
  local now = now_ms()
  local rev = string.format('%d', redis.call('INCR', keys[1]))
  t.status, t.updated_at, t.rev = 'done', now, rev
  redis.call('ZREM', keys[3], id)
  return commit(keys, args[1] .. id, t, 'complete', rev, 'status', 'done', 'updated_at', now, 'rev', rev)
end)
