-- claiming: hand the head of a lane's ready queue to a worker.
-- Used by claim.lua and by complete.lua (claim_next). Emits 'claimed'.

-- Claims the next ready task of lane with token; returns its id or nil.
-- woke: the caller consumed the lane's wake-up signal to get here, so it
-- passes the signal on while the lane has more work (one wake-up per pop).
local function claim_head(lane, token, worker, ttl_ms, woke)
  local head = redis.call('ZPOPMIN', key_ready(lane))
  if #head == 0 then return nil end
  local id = head[1]
  local t = load(id)
  local attempts = tonumber(t.attempts or '0') + 1
  local rev = rewrite(id, t, 'running', true, 'attempts', string.format('%d', attempts),
    'claim_token', token, 'claim_worker', worker, 'claimed_at', NOW_S, 'started_at', t.started_at or NOW_S,
    'claim_expires_at', string.format('%d', NOW + ttl_ms), 'heartbeat_at', NOW_S,
    'claim_ttl', string.format('%d', ttl_ms))
  record(id, rev, 'claimed', {attempt = attempts, worker = worker, token = token})
  if woke and redis.call('ZCARD', key_ready(lane)) > 0 then
    redis.call('ZADD', key_signal(lane), '0', 'm')
  end
  return id
end
