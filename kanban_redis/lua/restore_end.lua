-- restore_end: finish a restore (snapshot.restore); called until it reports none left.
--
-- Guarantees: the board seq resumes at or after the snapshot's; the board
-- gets a new incarnation and remembers the one it was restored from; tasks
-- that were running when the snapshot was taken go back to ready (their
-- workers did not survive), up to ARGV[8] per call; when none are left the
-- restore is logged and the marker removed, last.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  marker text (as given to restore_begin)
-- ARGV[4]  the snapshot's seq  ARGV[5]  new incarnation id
-- ARGV[6]  board created_at ms, or "" (now)     ARGV[7]  the snapshot's incarnation
-- ARGV[8]  most running tasks to requeue in this call
-- Returns  {0, requeued, running left} (left = 0: the restore is over)
--          {RESTORING, current marker} when another restore took over
-- Events   'requeued' per running task; log entries with op 'restore' (the last
--          one carries snapshot_seq and restored_from).
-- @include "lib"

if redis.call('GET', K_RESTORING) ~= ARGV[3] then
  return fail(E.RESTORING, tostring(redis.call('GET', K_RESTORING)))
end

if tonumber(redis.call('GET', K_SEQ) or '0') < tonumber(ARGV[4]) then
  redis.call('SET', K_SEQ, ARGV[4])
end
redis.call('HSET', K_META, 'incarnation', ARGV[5], 'restored_from', ARGV[7], 'restored_seq', ARGV[4],
  'restored_at', NOW)
redis.call('HSET', K_META, 'created_at', ARGV[6] ~= '' and ARGV[6] or NOW_S)

local ids = redis.call('ZRANGE', key_status('running'), 0, tonumber(ARGV[8]) - 1)
for _, id in ipairs(ids) do
  local t = load(id)
  local rev = touch(id)
  end_lease(id)
  set_status(id, t, 'ready', rev)
  record(id, rev, 'requeued', {reason = 'running when the snapshot was taken; its worker did not survive the restore',
    worker = t.claim_worker, attempt = tonumber(t.attempts or '0')})
end
local left = redis.call('ZCARD', key_status('running'))
if left > 0 then
  commit('restore')
  return {0, #ids, left}
end
if #ids == 0 then redis.call('INCR', K_SEQ) end
commit('restore', {snapshot_seq = ARGV[4], restored_from = ARGV[7]})
redis.call('DEL', K_RESTORING)
return {0, #ids, 0}
