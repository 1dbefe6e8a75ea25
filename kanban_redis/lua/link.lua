-- link: make child depend on parent (Board.link).
--
-- Guarantees: both tasks exist; no cycle (parent is not child nor one of its
-- descendants); an unfinished parent sends a ready/scheduled child back to
-- todo and is refused for a running, done or archived child. Linking twice
-- changes nothing.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  parent id           ARGV[4]  child id
-- Returns  {0, child JSON} | {TASK_NOT_FOUND|DEPENDENCY_CYCLE|INVALID_TRANSITION|RESTORING, detail}
-- Events   'linked'; one log entry, op 'link'.
-- @include "lib"

local g = guard()
if g then return g end

local parent_id, child_id = ARGV[3], ARGV[4]
local p = load(parent_id)
if not p then return fail(E.TASK_NOT_FOUND, parent_id) end
local c = load(child_id)
if not c then return fail(E.TASK_NOT_FOUND, child_id) end
local parents = parents_of(c)
for _, x in ipairs(parents) do
  if x == parent_id then return {0, cjson.encode(c)} end
end
-- walk up from the parent: reaching the child means the link closes a loop
local seen, stack = {}, {parent_id}
while #stack > 0 do
  local cur = table.remove(stack)
  if cur == child_id then
    return fail(E.DEPENDENCY_CYCLE, child_id .. ' -> ' .. parent_id .. ' would close a cycle')
  end
  if not seen[cur] then
    seen[cur] = true
    local ct = (cur == parent_id) and p or load(cur)
    if ct then
      for _, up in ipairs(parents_of(ct)) do stack[#stack + 1] = up end
    end
  end
end
local finished = p.status == 'done' or (p.status == 'archived' and p.completed_at)
if not finished and (c.status == 'running' or c.status == 'done' or c.status == 'archived') then
  return fail(E.INVALID_TRANSITION, 'cannot add an unfinished parent to a task that is ' .. c.status)
end
local rev = touch(child_id)
parents[#parents + 1] = parent_id
hset(child_id, 'parents', cjson.encode(parents))
redis.call('SADD', key_task_children(parent_id), child_id)
if not finished and (c.status == 'ready' or c.status == 'scheduled') then
  set_status(child_id, c, 'todo', rev)
end
record(child_id, rev, 'linked', {parent = parent_id})
return {0, commit('link')[child_id]}
