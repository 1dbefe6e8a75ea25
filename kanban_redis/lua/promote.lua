-- promote: scheduled tasks whose not_before has passed become ready (Board.promote_due).
--
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- At most BATCH tasks per call (Board drains them call by call).
-- Returns  {0, count} | {RESTORING, detail}
-- Events   'promoted' per task; one log entry, op 'promote', when any moved.
-- @include "lib"
-- @include "housekeeping"

local g = guard()
if g then return g end
local n = promote_due(BATCH)
commit('promote')
return {0, n}
