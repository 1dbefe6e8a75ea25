-- complete: finish a claimed task (Board.complete), optionally claiming the next.
--
-- Guarantees: only the live claim token completes; the task becomes done with
-- its result; children whose parents are now all finished leave todo in the
-- same script; given a next claim token, the head of the same lane is claimed
-- too (saves a round trip per task), after the housekeeping claim.lua does
-- (due scheduled tasks promoted, expired leases reclaimed, up to BATCH each).
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id             ARGV[4]  claim token
-- ARGV[5]  result JSON or ""
-- Only to claim the next task of the lane (claim_next):
-- ARGV[6]  next claim token    ARGV[7]  worker ("" = the same)   ARGV[8]  ttl ms ("" = the same)
-- Returns  {0, task JSON, next task JSON or false}
--          {TASK_NOT_FOUND|STALE_CLAIM|RESTORING, detail}
-- Events   'completed', 'promoted' for released children and due tasks, 'reclaimed', 'claimed';
--          one log entry, op 'complete'.
-- @include "lib"
-- @include "claims"
-- @include "housekeeping"
-- @include "claiming"

local g = guard()
if g then return g end
local id = ARGV[3]
local t, err = check_claim(id, ARGV[4])
if not t then return err end
local lease_ms = t.claim_ttl
end_lease(id)
local rev
if ARGV[5] ~= '' then
  rev = rewrite(id, t, 'done', false, 'completed_at', NOW_S, 'result', ARGV[5])
else
  rev = rewrite(id, t, 'done', false, 'completed_at', NOW_S)
end
record(id, rev, 'completed', {attempt = tonumber(t.attempts), worker = t.claim_worker})
release_children(id)

local next_id = nil
if ARGV[6] then
  local worker = ARGV[7] ~= '' and ARGV[7] or t.claim_worker
  local ttl = tonumber(ARGV[8] ~= '' and ARGV[8] or lease_ms)
  promote_due(BATCH)
  reclaim_expired(BATCH)
  next_id = claim_head(lane_of(t), ARGV[6], worker, ttl)
end
local states = commit('complete')
return {0, states[id], next_id and states[next_id] or false}
