-- djenga: record one task update in ONE round trip.
-- KEYS[1] task hash (seq, epoch, snap)   KEYS[2] event log stream   KEYS[3] recent-tasks zset
-- KEYS[4] the task's lease (alive while a worker runs it)
-- KEYS[5] the task's tombstone (outlives the record: tells "expired" from "queued")
-- ARGV[1] snapshot JSON object without seq/epoch
-- ARGV[2] numbers "ttl maxlen recent lease upkeep now attempt tomb":
--         ttl    seconds the keys live (0 = keep)      maxlen  event log length (approx.)
--         recent size of the recent-tasks index        lease   ms to (re)set the lease for,
--                                                               0 to drop it, -1 to leave it
--         upkeep 1 to also do upkeep (expiries, lease, the recent index), 0 to skip it: the
--                caller asks on step boundaries and every few updates, so plain updates
--                of a chatty task stay cheap
--         now    seconds since the epoch (the recent index's score)
--         attempt the run's attempt number: a write from an earlier attempt than the stored
--                one is refused (-1), so a retried or redelivered run never goes back
--         tomb   seconds the tombstone outlives the record (with upkeep, when ttl > 0)
-- ARGV[3] task id   ARGV[4] task channel   ARGV[5] all-tasks channel
-- ARGV[6] epoch to use if this starts a new log
-- ARGV[7] '' or a seq: then apply only if the task is still at that seq with no lease
--         (how a watcher records LOST without racing a live worker); -1 if refused
-- ARGV[8..] events, JSON objects without seq
if ARGV[7] ~= '' then
  if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('HGET', KEYS[1], 'seq') ~= ARGV[7] then
    return -1
  end
end
local ttl, maxlen, recent, lease, upkeep, now, attempt, tomb =
  string.match(ARGV[2], '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
ttl, recent, lease, now = tonumber(ttl), tonumber(recent), tonumber(lease), tonumber(now)
tomb = tonumber(tomb)
attempt = tonumber(attempt)
local stored = redis.call('HMGET', KEYS[1], 'epoch', 'attempt')
local stored_attempt = tonumber(stored[2]) or 0
if attempt < stored_attempt then
  return -1
end
if attempt > stored_attempt then
  redis.call('HSET', KEYS[1], 'attempt', attempt)
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = stored[1]
if seq == 1 or not epoch then
  -- a new (or lost) history: start a new epoch so clients know what they hold is gone
  epoch = ARGV[6]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local snap = '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[1], 2)
redis.call('HSET', KEYS[1], 'snap', snap)
for i = 8, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, seq .. '-' .. (i - 8),
             'e', '{"seq":' .. seq .. ',' .. string.sub(ARGV[i], 2))
end
if lease == 0 then
  redis.call('DEL', KEYS[4])
end
if upkeep == '1' or seq == 1 then
  redis.call('ZADD', KEYS[3], now, ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -recent - 1)
  if lease > 0 then
    redis.call('SET', KEYS[4], '1', 'PX', lease)
  end
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('EXPIRE', KEYS[2], ttl)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
    redis.call('EXPIRE', KEYS[3], ttl)
    redis.call('SET', KEYS[5], '1', 'EX', ttl + tomb)
  end
end
redis.call('PUBLISH', ARGV[4], snap)
redis.call('PUBLISH', ARGV[5], snap)
return seq
