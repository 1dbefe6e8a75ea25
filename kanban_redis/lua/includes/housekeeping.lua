-- housekeeping: time-driven changes, run by promote.lua/reclaim.lua and
-- lazily by claim.lua. Emits 'promoted' (due) and 'reclaimed'.

-- Scheduled tasks whose not_before has passed become ready; returns the count.
local function promote_due(limit)
  local ids = redis.call('ZRANGEBYSCORE', K_SCHEDULED, '-inf', NOW_S, 'LIMIT', '0', limit)
  for _, id in ipairs(ids) do
    local t = load(id)
    local rev = touch(id)
    set_status(id, t, 'ready', rev)
    record(id, rev, 'promoted', {reason = 'due'})
  end
  return #ids
end

-- Running tasks whose lease expired go back to ready, or to blocked once
-- attempts reached max_attempts; returns the count.
local function reclaim_expired(limit)
  local ids = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', NOW_S, 'LIMIT', '0', limit)
  for _, id in ipairs(ids) do
    local t = load(id)
    local rev = touch(id)
    local attempts, max = tonumber(t.attempts or '0'), tonumber(t.max_attempts or '1')
    end_lease(id)
    record(id, rev, 'reclaimed', {attempt = attempts, worker = t.claim_worker, reason = 'lease expired'})
    if attempts >= max then
      local why = 'lease expired on attempt ' .. attempts .. ' of ' .. max
      hset(id, 'error', why)
      block_task(id, t, rev, why, 'transient')
    else
      set_status(id, t, 'ready', rev)
    end
  end
  return #ids
end

-- Milliseconds until the next scheduled task is due or lease expires (nil if none).
local function next_wake()
  local first = nil
  for _, key in ipairs({K_SCHEDULED, K_LEASES}) do
    local head = redis.call('ZRANGE', key, '0', '0', 'WITHSCORES')
    if #head > 0 then
      local d = tonumber(head[2]) - NOW
      if not first or d < first then first = d end
    end
  end
  return first
end
