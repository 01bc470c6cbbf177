-- A rescuer claims chunks of a running job to send again; only one rescuer gets each.
-- Mode 'expired': the chunks whose lease ran out (their worker died, their
-- message was lost, or their retry was never taken), at most ARGV[4].
-- Mode 'missing' (the stall fallback): the chunks of ARGV[4..] holding no live lease.
-- Stored and failed chunks are never claimed. Each claimed chunk takes a place at
-- the back of the job's queue order, with the message ARGV[3] .. chunk as its sender.
-- KEYS: job, leases, owners, queued, senders, done, failed.
-- ARGV: now, mode, task id prefix, limit | chunk ids...
-- Returns the claimed chunk ids.
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return {} end
local candidates
if ARGV[2] == 'expired' then
  candidates = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', stamp, 'LIMIT', 0, tonumber(ARGV[4]))
else
  candidates = {}
  for i = 4, #ARGV do
    local expiry = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[i]))
    if not (expiry and expiry > now) then table.insert(candidates, ARGV[i]) end
  end
end
local claimed = {}
for _, chunk in ipairs(candidates) do
  redis.call('ZREM', KEYS[2], chunk)
  redis.call('HDEL', KEYS[3], chunk)
  if redis.call('SISMEMBER', KEYS[6], chunk) == 0 and redis.call('HEXISTS', KEYS[7], chunk) == 0 then
    redis.call('ZADD', KEYS[4], redis.call('HINCRBY', KEYS[1], 'seq', 1), chunk)
    redis.call('HSET', KEYS[5], chunk, ARGV[3] .. chunk)
    table.insert(claimed, chunk)
  end
end
if ARGV[2] == 'expired' and #claimed > 0 then
  -- Something moved: the job-wide stall wait starts again (it would re-send these too).
  redis.call('HINCRBY', KEYS[1], 'resent', #claimed)
  redis.call('HSET', KEYS[1], 'progress_at', stamp)
end
return claimed
