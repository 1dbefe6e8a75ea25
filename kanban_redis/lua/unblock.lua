-- unblock: let a blocked task run again (Board.unblock).
--
-- Guarantees: the task goes to todo (parents open), scheduled (future
-- not_before) or ready; a task blocked as 'transient' (retries exhausted)
-- starts its attempts over.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id
-- Returns  {0, task JSON} | {TASK_NOT_FOUND|INVALID_TRANSITION|RESTORING, detail}
-- Events   'unblocked'; one log entry, op 'unblock'.
-- @include "lib"
-- @include "moving"

local g = guard()
if g then return g end

local id = ARGV[3]
local t = load(id)
if not t then return fail(E.TASK_NOT_FOUND, id) end
if t.status ~= 'blocked' then return fail(E.INVALID_TRANSITION, 'task is ' .. t.status .. ', not blocked') end
local rev = touch(id)
if t.block_kind == 'transient' then hset(id, 'attempts', 0) end
apply_move(id, t, runnable_status(t), rev, 'unblocked', '')
return {0, commit('unblock')[id]}
