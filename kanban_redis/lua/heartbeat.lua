-- heartbeat: extend a live claim's lease (Board.heartbeat).
--
-- Leases are not board state: no seq bump, no change-log entry, no event.
-- KEYS[1]  the board's meta key (routes the call; the other keys derive from ARGV[1], see keys.py)
-- ARGV[1]  key prefix          ARGV[2]  now ms or ""
-- ARGV[3]  task id             ARGV[4]  claim token
-- ARGV[5]  new ttl (ms), or "" for the ttl of the claim
-- Returns  {0, new expiry ms} | {TASK_NOT_FOUND|STALE_CLAIM|RESTORING, detail}
-- @include "lib"
-- @include "claims"

local g = guard()
if g then return g end

local id = ARGV[3]
local t, err = check_claim(id, ARGV[4])
if not t then return err end
local ttl = tonumber(ARGV[5] ~= '' and ARGV[5] or t.claim_ttl)
local expires = string.format('%d', NOW + ttl)
redis.call('HSET', key_task(id), 'claim_expires_at', expires, 'heartbeat_at', NOW_S, 'claim_ttl', string.format('%d', ttl))
redis.call('ZADD', K_LEASES, expires, id)
return {0, expires}
