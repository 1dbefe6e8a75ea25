-- comment: add a comment to a task (Board.comment).
--
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id             ARGV[4]  author            ARGV[5]  body
-- Returns  {0, task JSON, comment JSON} | {TASK_NOT_FOUND|RESTORING, detail}
-- Events   'commented'; one log entry, op 'comment', carrying the comment.
-- @include "lib"

local g = guard()
if g then return g end

local id = ARGV[3]
if not load(id) then return fail(E.TASK_NOT_FOUND, id) end
local rev = touch(id)
local c = cjson.encode({task_id = id, seq = rev, author = ARGV[4], body = ARGV[5], created_at = NOW})
redis.call('RPUSH', key_task_comments(id), c)
record(id, rev, 'commented', {author = ARGV[4]})
return {0, commit('comment', {comment = c})[id], c}
