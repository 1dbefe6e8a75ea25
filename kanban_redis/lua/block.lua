-- block: park a task with a reason (Board.block).
--
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id             ARGV[4]  reason            ARGV[5]  kind
-- Returns  {0, task JSON} | {TASK_NOT_FOUND|INVALID_TRANSITION|RESTORING, detail}
-- Events   'blocked'; one log entry, op 'block'.
-- @include "lib"
-- @include "moving"

local g = guard()
if g then return g end

local id = ARGV[3]
local t = load(id)
if not t then return fail(E.TASK_NOT_FOUND, id) end
local bad = check_move(t, 'blocked')
if bad then return bad end
local rev = touch(id)
block_task(id, t, rev, ARGV[4], ARGV[5])
return {0, commit('block')[id]}
