-- move: change a task's status by hand (Board.move), within models.ALLOWED_MOVES.
--
-- Guarantees: running is never entered or left; ready needs every parent
-- finished; scheduled needs a future not_before; blocked gets kind 'manual'.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id             ARGV[4]  target status     ARGV[5]  reason ("" none)
-- Returns  {0, task JSON} | {TASK_NOT_FOUND|INVALID_TRANSITION|PARENTS_NOT_DONE|RESTORING, detail}
-- Events   'moved' (+ 'promoted' children when moved to done); one log entry, op 'move'.
-- @include "lib"
-- @include "moving"

local g = guard()
if g then return g end

local id, to = ARGV[3], ARGV[4]
local t = load(id)
if not t then return fail(E.TASK_NOT_FOUND, id) end
local bad = check_move(t, to)
if bad then return bad end
local rev = touch(id)
if to == 'blocked' then
  hset(id, 'block_reason', ARGV[5] ~= '' and ARGV[5] or 'moved to blocked', 'block_kind', 'manual')
end
apply_move(id, t, to, rev, 'moved', ARGV[5])
return {0, commit('move')[id]}
