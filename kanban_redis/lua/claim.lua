-- claim: give the head of a lane's ready queue to one worker (Board.claim).
--
-- Guarantees: exactly one caller gets a task; it becomes running with a new
-- fencing token, attempts + 1, and a lease of ttl ms. Before claiming, due
-- scheduled tasks are promoted and expired leases reclaimed (up to BATCH
-- each), so a board with no housekeeping process still moves.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  lane ("" = unassigned tasks)
-- ARGV[4]  claim token         ARGV[5]  worker name
-- ARGV[6]  lease ttl (ms)
-- ARGV[7]  "1" when the caller woke on the lane's signal (pass it on if more is ready), else absent
-- Returns  {0, task JSON}            claimed
--          {0, false, ms or false}   nothing ready; ms until the next scheduled/lease deadline
-- Events   'claimed' (+ 'promoted', 'reclaimed', 'blocked'); one log entry, op 'claim'.
-- @include "lib"
-- @include "housekeeping"
-- @include "claiming"

local g = guard()
if g then return g end

promote_due(BATCH)
reclaim_expired(BATCH)
local id = claim_head(ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1')
local states = commit('claim')
if id then return {0, states[id]} end
return {0, false, next_wake() or false}
