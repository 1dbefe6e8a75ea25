-- progress: record how far a running task has got (Board.progress).
--
-- Guarantees: only the live claim token writes; the value replaces the
-- task's previous progress. Progress is task state (readers and snapshots
-- see it), so unlike a heartbeat it bumps seq and is logged.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id             ARGV[4]  claim token       ARGV[5]  progress JSON
-- Returns  {0, task JSON} | {TASK_NOT_FOUND|STALE_CLAIM|RESTORING, detail}
-- Events   'progress'; one log entry, op 'progress'.
-- @include "lib"
-- @include "claims"

local id = ARGV[3]
local t, rev, err = claimed(id, ARGV[4])
if not t then return err end
hset(id, 'progress', ARGV[5])
record(id, rev, 'progress', {attempt = tonumber(t.attempts)})
return {0, commit('progress')[id]}
