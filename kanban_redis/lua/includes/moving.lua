-- moving: the manual transitions shared by move, block, unblock and cancel.

-- nil when a move from t's status to `to` is allowed, else the error reply.
local function check_move(t, to)
  if t.status == 'running' or to == 'running' then
    return fail(E.INVALID_TRANSITION, 'only claim, complete, fail and reclaim enter or leave running')
  end
  if not (MOVES[t.status] and MOVES[t.status][to]) then
    return fail(E.INVALID_TRANSITION, 'cannot move from ' .. t.status .. ' to ' .. to)
  end
  if to == 'ready' then
    local open = unfinished_parents(t)
    if #open > 0 then return fail(E.PARENTS_NOT_DONE, table.concat(open, ',')) end
  end
  if to == 'scheduled' and not (t.not_before and tonumber(t.not_before) > NOW) then
    return fail(E.INVALID_TRANSITION, 'scheduled needs a not_before in the future')
  end
end

-- Applies a checked move; leaving blocked clears the block, entering ready
-- means "now" (not_before dropped), entering done releases children.
local function apply_move(id, t, to, rev, kind, reason)
  local from = t.status
  if from == 'blocked' then hdel(id, 'block_reason', 'block_kind') end
  if to == 'ready' then hdel(id, 'not_before') end
  set_status(id, t, to, rev)
  if to == 'done' then hset(id, 'completed_at', NOW_S) end
  record(id, rev, kind, {from = from, to = to, reason = reason})
  if to == 'done' then release_children(id) end
end
