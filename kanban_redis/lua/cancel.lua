-- cancel: archive a task that is not running (Board.cancel).
--
-- Children of a cancelled task stay in todo (their parent never finished).
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id
-- Returns  {0, task JSON} | {TASK_NOT_FOUND|INVALID_TRANSITION|RESTORING, detail}
-- Events   'cancelled'; one log entry, op 'cancel'.
-- @include "lib"
-- @include "moving"

local g = guard()
if g then return g end

local id = ARGV[3]
local t = load(id)
if not t then return fail(E.TASK_NOT_FOUND, id) end
if t.status == 'running' or t.status == 'archived' then
  return fail(E.INVALID_TRANSITION, 'cannot cancel a task that is ' .. t.status)
end
local rev = touch(id)
apply_move(id, t, 'archived', rev, 'cancelled', '')
return {0, commit('cancel')[id]}
