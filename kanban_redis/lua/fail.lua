-- fail: a claimed run failed (Board.fail).
--
-- Guarantees: only the live claim token fails; with retry and attempts below
-- max_attempts the task goes back to ready (delay 0) or waits in scheduled
-- for the delay; otherwise it is blocked with kind 'transient' (retries
-- exhausted, the dead-letter column) or, when no retry was asked, the kind
-- given (default 'failed'). The error text is kept on the task either way.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id             ARGV[4]  claim token
-- ARGV[5]  error text          ARGV[6]  "1" to retry, "0" not to
-- ARGV[7]  delay ms, or "" for exponential backoff
-- ARGV[8]  backoff base ms     ARGV[9]  backoff cap ms
-- ARGV[10] block kind when not retrying ("" or absent = 'failed')
-- Returns  {0, task JSON} | {TASK_NOT_FOUND|STALE_CLAIM|RESTORING, detail}
-- Events   'failed' (+ 'blocked'); one log entry, op 'fail'.
-- @include "lib"
-- @include "claims"

local id = ARGV[3]
local t, rev, err = claimed(id, ARGV[4])
if not t then return err end
local attempts, max = tonumber(t.attempts), tonumber(t.max_attempts)
end_lease(id)
hset(id, 'error', ARGV[5])
if ARGV[6] == '1' and attempts < max then
  local delay = tonumber(ARGV[7])
  if not delay then
    delay = math.min(tonumber(ARGV[9]), tonumber(ARGV[8]) * 2 ^ (attempts - 1))
  end
  record(id, rev, 'failed', {attempt = attempts, error = ARGV[5], retry_in_ms = delay})
  requeue(id, t, rev, delay)
else
  record(id, rev, 'failed', {attempt = attempts, error = ARGV[5]})
  if ARGV[6] == '1' then
    block_task(id, t, rev, 'gave up after ' .. attempts .. ' of ' .. max .. ' attempts: ' .. ARGV[5], 'transient')
  else
    block_task(id, t, rev, ARGV[5], (ARGV[10] or '') ~= '' and ARGV[10] or 'failed')
  end
end
local states = commit('fail')
return {0, states[id]}
