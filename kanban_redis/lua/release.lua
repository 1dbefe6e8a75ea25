-- release: give a claimed task back without counting the run (Board.release).
--
-- Guarantees: only the live claim token releases; the task goes back to
-- ready at once (delay 0) or waits in scheduled for the delay; the claim
-- that took it is not counted (attempts - 1), so a worker that stops, or a
-- run that asks to be tried again later, does not use up max_attempts.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id             ARGV[4]  claim token
-- ARGV[5]  reason              ARGV[6]  delay ms (0 = ready now)
-- Returns  {0, task JSON} | {TASK_NOT_FOUND|STALE_CLAIM|RESTORING, detail}
-- Events   'released'; one log entry, op 'release'.
-- @include "lib"
-- @include "claims"

local id = ARGV[3]
local t, rev, err = claimed(id, ARGV[4])
if not t then return err end
local attempt, delay = tonumber(t.attempts), tonumber(ARGV[6])
end_lease(id)
hset(id, 'attempts', math.max(attempt - 1, 0))
record(id, rev, 'released', {attempt = attempt, reason = ARGV[5], retry_in_ms = delay})
requeue(id, t, rev, delay)
return {0, commit('release')[id]}
