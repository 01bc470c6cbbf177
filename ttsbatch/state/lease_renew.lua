-- A live worker renews the leases it holds on one job's chunks.
-- KEYS: job, leases, owners, queued, senders, done.
-- ARGV: now, ttl, then chunk id and owner pairs.
-- Returns the chunks whose lease is no longer the caller's (claimed and sent
-- again, stored, failed for good): their worker should stop. None if the job's
-- state is gone (flushed): then nobody sends them again either. A chunk the
-- job's state was set up again with (resumed while its worker held it: queued,
-- with no owner and no sender of its own) goes back to the worker holding it.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local lost = {}
local expiry = now + tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  local chunk, owner = ARGV[i], ARGV[i + 1]
  local holder = redis.call('HGET', KEYS[3], chunk)
  if holder == owner then
    redis.call('ZADD', KEYS[2], expiry, chunk)
  elseif not holder and redis.call('ZSCORE', KEYS[4], chunk)
      and redis.call('HEXISTS', KEYS[5], chunk) == 0
      and redis.call('SISMEMBER', KEYS[6], chunk) == 0 then
    redis.call('ZREM', KEYS[4], chunk)
    redis.call('ZADD', KEYS[2], expiry, chunk)
    redis.call('HSET', KEYS[3], chunk, owner)
  else
    table.insert(lost, chunk)
  end
end
return lost
