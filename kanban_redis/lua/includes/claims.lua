-- claims: the fencing-token check shared by heartbeat, complete and fail.

-- Returns the task if token is its live claim, else nil and the error reply.
local function check_claim(id, token)
  local t = load(id)
  if not t then return nil, fail(E.TASK_NOT_FOUND, id) end
  if t.status ~= 'running' then return nil, fail(E.STALE_CLAIM, 'task is ' .. t.status) end
  if t.claim_token ~= token then return nil, fail(E.STALE_CLAIM, 'claimed by another token') end
  return t
end
