-- claims: the fencing-token check shared by heartbeat, complete, fail,
-- release and progress, and the requeue of a run that ends early.

-- Returns the task if token is its live claim, else nil and the error reply.
local function check_claim(id, token)
  local t = load(id)
  if not t then return nil, fail(E.TASK_NOT_FOUND, id) end
  if t.status ~= 'running' then return nil, fail(E.STALE_CLAIM, 'task is ' .. t.status) end
  if t.claim_token ~= token then return nil, fail(E.STALE_CLAIM, 'claimed by another token') end
  return t
end

-- Puts a task whose run ended back in line: ready now (delay 0) or scheduled
-- for delay ms.
local function requeue(id, t, rev, delay)
  if delay > 0 then
    t.not_before = NOW + delay
    redis.call('HSET', key_task(id), 'not_before', t.not_before)
    set_status(id, t, 'scheduled', rev)
  else
    set_status(id, t, 'ready', rev)
  end
end
