-- restore_begin: open a restore of the board from a snapshot (snapshot.restore).
--
-- Guarantees: sets the `restoring` marker, under which every other script
-- refuses to run, unless the board holds data and replacing it was not asked
-- for (then nothing is written). A marker left by a restore that died is
-- taken over, so a crashed restore is simply run again.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  marker text (names the restore; later restore scripts must pass the same)
-- ARGV[4]  "1" to replace a board that holds data, "0" to refuse
-- Returns  {0, 'started', seq, task count}   marker set on a board
--          {0, 'resumed', previous marker}    an unfinished restore's marker was taken over
--          {0, 'exists', seq, task count}     the board holds data; nothing written
-- Events   none (restore_end writes the log entry).

local previous = redis.call('GET', K_RESTORING)
if previous then
  redis.call('SET', K_RESTORING, ARGV[3])
  return {0, 'resumed', previous}
end
local seq = tonumber(redis.call('GET', K_SEQ) or '0')
local count = redis.call('ZCARD', K_TASKS)
if (seq > 0 or count > 0) and ARGV[4] ~= '1' then
  return {0, 'exists', seq, count}
end
redis.call('SET', K_RESTORING, ARGV[3])
return {0, 'started', seq, count}
