-- djenga: record one task update in ONE round trip.
--
-- KEYS[1]  task hash (seq, epoch, attempt, snap)
-- KEYS[2]  event log stream (entry ids are <seq>-<n>)
-- KEYS[3]  recent-tasks zset (the console's list)
-- KEYS[4]  the task's lease (alive while a worker runs it)
-- KEYS[5]  the task's tombstone (outlives the record: tells "expired" from "queued")
--
-- ARGV[1]  snapshot: JSON object without seq/epoch (the script adds both)
-- ARGV[2]  ttl: seconds the keys live (0 = keep)
-- ARGV[3]  maxlen: event log length (approximate trimming)
-- ARGV[4]  recent: size of the recent-tasks index
-- ARGV[5]  lease: ms to (re)set the lease for, 0 to drop it, -1 to leave it
-- ARGV[6]  upkeep: 1 to also do upkeep (expiries, lease, the recent index), 0 to skip it;
--          the caller asks on step boundaries and every few updates, so plain updates of
--          a chatty task stay cheap (a task's first write always does it)
-- ARGV[7]  now: seconds since the epoch (the recent index's score)
-- ARGV[8]  attempt: the run's attempt number; a write from an earlier attempt than the
--          stored one is refused (-1), so a retried or redelivered run never goes back
-- ARGV[9]  tomb: seconds the tombstone outlives the record (with upkeep, when ttl > 0)
-- ARGV[10] task id (the recent index's member)
-- ARGV[11] the task's channel
-- ARGV[12] the all-tasks channel (the console)
-- ARGV[13] epoch to use if this write starts a new log
-- ARGV[14] only-if-seq: '' or a seq; then apply only if the task is still at that seq
--          and holds no lease (how a reader records LOST without racing a live worker)
-- ARGV[15] floor: the highest seq the writer may have been given (0: none); the new seq is
--          above it even on a server that lost the last writes (a Sentinel failover to a
--          replica that was behind), so watchers never hold a seq the new history reuses
-- ARGV[16] sharded: 1 to publish with SPUBLISH (shard channels, a Redis Cluster: both
--          channels carry the keys' hash tag), 0 with PUBLISH
-- ARGV[17..] events: JSON objects without seq
--
-- Returns the new seq, or -1 if the write was refused; when a cancel request is stored
-- in the task hash (field 'cancel', written by action.lua), {seq, cancel request JSON}:
-- the writer learns of it in the round trip it makes anyway, and every snapshot carries
-- it as its "cancel" field.
local only_if_seq = ARGV[14]
if only_if_seq ~= '' then
  if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('HGET', KEYS[1], 'seq') ~= only_if_seq then
    return -1
  end
end
local attempt = tonumber(ARGV[8])
local stored = redis.call('HMGET', KEYS[1], 'epoch', 'attempt', 'cancel')
local stored_attempt = tonumber(stored[2]) or 0
if attempt < stored_attempt then
  return -1
end
if attempt > stored_attempt then
  redis.call('HSET', KEYS[1], 'attempt', attempt)
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local floor = tonumber(ARGV[15]) or 0
if seq <= floor then
  seq = floor + 1
  redis.call('HSET', KEYS[1], 'seq', seq)
end
local epoch = stored[1]
if seq == 1 or not epoch then
  -- a new (or lost) history: start a new epoch so clients know what they hold is gone
  epoch = ARGV[13]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local cancel = stored[3]
local snap = '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '",'
if cancel then
  snap = snap .. '"cancel":' .. cancel .. ','
end
snap = snap .. string.sub(ARGV[1], 2)
redis.call('HSET', KEYS[1], 'snap', snap)
local maxlen = ARGV[3]
for i = 17, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, seq .. '-' .. (i - 17),
             'e', '{"seq":' .. seq .. ',' .. string.sub(ARGV[i], 2))
end
local lease = tonumber(ARGV[5])
if lease == 0 then
  redis.call('DEL', KEYS[4])
end
if ARGV[6] == '1' or seq == 1 then
  local ttl, now = tonumber(ARGV[2]), tonumber(ARGV[7])
  redis.call('ZADD', KEYS[3], now, ARGV[10])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[4]) - 1)
  if lease > 0 then
    redis.call('SET', KEYS[4], '1', 'PX', lease)
  end
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('EXPIRE', KEYS[2], ttl)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
    redis.call('EXPIRE', KEYS[3], ttl)
    redis.call('SET', KEYS[5], '1', 'EX', ttl + tonumber(ARGV[9]))
  end
end
local publish = ARGV[16] == '1' and 'SPUBLISH' or 'PUBLISH'
redis.call(publish, ARGV[11], snap)
redis.call(publish, ARGV[12], snap)
if cancel then
  return {seq, cancel}
end
return seq
