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

-- The opening of every transition of a live claim: refuses while restoring or
-- when token is not the live claim; else returns the task and its new rev.
local function claimed(id, token)
  local g = guard()
  if g then return nil, nil, g end
  local t, err = check_claim(id, token)
  if not t then return nil, nil, err end
  return t, touch(id)
end

-- Puts a task whose run ended back in line: ready now (delay 0) or scheduled
-- for delay ms.
local function requeue(id, t, rev, delay)
  if delay > 0 then
    hset(id, 'not_before', NOW + delay)
    set_status(id, t, 'scheduled', rev)
  else
    set_status(id, t, 'ready', rev)
  end
end
