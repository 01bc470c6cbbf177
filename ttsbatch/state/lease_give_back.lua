-- A worker lets go of a chunk it did not store, and its message goes back to the broker:
-- * a retry (ARGV[5] = seconds): Celery publishes it with a countdown; the chunk
--   keeps a lease of that many seconds that nobody renews, so a retry held by a
--   worker that dies comes back when it runs out;
-- * a requeue (ARGV[5] = ''): the message goes to the back of the queue; the
--   chunk takes its place in the job's queue order, the message as its sender.
-- KEYS: job, leases, owners, queued, senders. ARGV: now, chunk id, owner, task id, seconds.
-- Returns 1, 0 if the lease is no longer the caller's, -1 if the job is unknown.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local chunk = ARGV[2]
local holder = redis.call('HGET', KEYS[3], chunk)
if holder ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[3], chunk)
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), chunk)
  return 1
end
redis.call('ZREM', KEYS[2], chunk)
redis.call('ZADD', KEYS[4], redis.call('HINCRBY', KEYS[1], 'seq', 1), chunk)
redis.call('HSET', KEYS[5], chunk, ARGV[4])
return 1
