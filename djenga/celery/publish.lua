-- djenga: record one task update in ONE round trip.
-- KEYS[1] task hash (seq, epoch, snap)   KEYS[2] event log stream   KEYS[3] recent-tasks zset
-- KEYS[4] the task's lease (alive while a worker runs it)
-- ARGV[1] snapshot JSON object without seq/epoch   ARGV[2] ttl seconds (0 = keep)
-- ARGV[3] event log max length   ARGV[4] task channel   ARGV[5] all-tasks channel
-- ARGV[6] epoch to use if this starts a new log   ARGV[7] now (seconds)
-- ARGV[8] recent-tasks index size   ARGV[9] task id
-- ARGV[10] lease: ms to (re)set it for, 0 to drop it, -1 to leave it
-- ARGV[11] '' or a seq: then apply only if the task is still at that seq with no lease
--          (how a watcher records LOST without racing a live worker); -1 if refused
-- ARGV[12] '1' to also do upkeep (expiries, lease, trimming the recent index), '0' to skip it:
--          the caller asks on step boundaries and every few updates, so a chatty task's
--          plain updates stay cheap
-- ARGV[13..] events, JSON objects without seq
if ARGV[11] ~= '' then
  if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('HGET', KEYS[1], 'seq') ~= ARGV[11] then
    return -1
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if seq == 1 or not epoch then
  -- a new (or lost) history: start a new epoch so clients know what they hold is gone
  epoch = ARGV[6]
  redis.call('DEL', KEYS[2])
end
local snap = '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[1], 2)
redis.call('HSET', KEYS[1], 'snap', snap, 'epoch', epoch)
for i = 13, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-' .. (i - 13),
             'e', '{"seq":' .. seq .. ',' .. string.sub(ARGV[i], 2))
end
local lease = tonumber(ARGV[10])
local now = tonumber(ARGV[7])
redis.call('ZADD', KEYS[3], now, ARGV[9])
if lease == 0 then
  redis.call('DEL', KEYS[4])
end
if ARGV[12] == '1' or seq == 1 then
  if lease > 0 then
    redis.call('SET', KEYS[4], '1', 'PX', lease)
  end
  local ttl = tonumber(ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[8]) - 1)
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('EXPIRE', KEYS[2], ttl)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
    redis.call('EXPIRE', KEYS[3], ttl)
  end
end
redis.call('PUBLISH', ARGV[4], snap)
redis.call('PUBLISH', ARGV[5], snap)
return seq
