-- djenga: record an action on a task (cancel, revoke, terminate, retry) in ONE round trip.
--
-- KEYS[1]  task hash (seq, epoch, snap; the cancel request goes in its field 'cancel')
-- KEYS[2]  event log stream
--
-- ARGV[1]  1 to store ARGV[2] as the task's cancel request (kept if one is stored), 0 not
-- ARGV[2]  the cancel request: JSON object {"by", "staff", "at", "via"}
-- ARGV[3]  the action's event: JSON object without seq
-- ARGV[4]  ttl: seconds a new record lives (0 = keep); a stored record keeps its own
-- ARGV[5]  maxlen: event log length (approximate trimming)
-- ARGV[6]  the task's channel
-- ARGV[7]  the all-tasks channel (the console)
-- ARGV[8]  sharded: 1 to publish with SPUBLISH (a Redis Cluster), 0 with PUBLISH
--
-- A task with a stored snapshot that is not final gets the snapshot again under a new
-- seq, carrying the cancel request as its "cancel" field, and the event in its log, so
-- every watcher and the console's timeline see the action at once.
--
-- Returns 0 if the task is already final (nothing stored), 1 if it was recorded on the
-- snapshot of a started task, 2 if the task has not started: no snapshot yet, or a
-- PENDING one (declared steps, still queued), which is recorded too.
local raw = redis.call('HGET', KEYS[1], 'snap')
local state = nil
if raw then
  state = cjson.decode(raw)['state']
  if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' or state == 'LOST'
      or state == 'EXPIRED' then
    return 0
  end
end
local old = redis.call('HGET', KEYS[1], 'cancel')
if ARGV[1] == '1' and not old then
  redis.call('HSET', KEYS[1], 'cancel', ARGV[2])
end
local cancel = redis.call('HGET', KEYS[1], 'cancel')
local ttl = tonumber(ARGV[4])
if ttl > 0 and redis.call('TTL', KEYS[1]) == -1 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
if not raw then
  return 2
end
local stored = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local epoch = stored[2]
local head = '{"seq":' .. stored[1] .. ',"epoch":"' .. epoch .. '",'
local rest = string.sub(raw, #head + 1)
if old then
  local injected = '"cancel":' .. old .. ','
  if string.sub(rest, 1, #injected) == injected then
    rest = string.sub(rest, #injected + 1)
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local snap = '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '",'
if cancel then
  snap = snap .. '"cancel":' .. cancel .. ','
end
snap = snap .. rest
redis.call('HSET', KEYS[1], 'snap', snap)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], seq .. '-0',
           'e', '{"seq":' .. seq .. ',' .. string.sub(ARGV[3], 2))
local publish = ARGV[8] == '1' and 'SPUBLISH' or 'PUBLISH'
redis.call(publish, ARGV[6], snap)
redis.call(publish, ARGV[7], snap)
if state == 'PENDING' then
  return 2
end
return 1
