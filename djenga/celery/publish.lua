-- djenga: record one task update in ONE round trip.
-- KEYS[1] task hash (seq, epoch, snap)   KEYS[2] event log stream
-- ARGV[1] snapshot JSON object without seq/epoch   ARGV[2] event JSON object ('' for none)
-- ARGV[3] ttl seconds (0 = keep)   ARGV[4] event log max length
-- ARGV[5] pub/sub channel          ARGV[6] epoch to use if this starts a new log
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if seq == 1 or not epoch then
  -- a new (or lost) history: start a new epoch so clients know what they hold is gone
  epoch = ARGV[6]
  redis.call('DEL', KEYS[2])
end
local head = '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '",'
local snap = head .. string.sub(ARGV[1], 2)
redis.call('HSET', KEYS[1], 'snap', snap, 'epoch', epoch)
if ARGV[2] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], seq .. '-0',
             'e', '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2))
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[5], snap)
return seq
