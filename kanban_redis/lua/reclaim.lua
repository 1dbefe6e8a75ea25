-- reclaim: running tasks whose lease expired go back to ready, or to blocked
-- (kind 'transient') once attempts reached max_attempts (Board.reclaim_expired).
--
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- At most BATCH tasks per call (Board drains them call by call).
-- Returns  {0, count} | {RESTORING, detail}
-- Events   'reclaimed' (+ 'blocked') per task; one log entry, op 'reclaim', when any moved.
-- @include "lib"
-- @include "housekeeping"

local g = guard()
if g then return g end
local n = reclaim_expired(BATCH)
commit('reclaim')
return {0, n}
