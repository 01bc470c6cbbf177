-- Record a chunk failed for good (nobody sends it again); fail the job past its budget.
-- KEYS: job, failed, leases, owners, queued, senders. ARGV: now, chunk id, reason, budget.
-- Returns 1 if this failure exhausted the budget and failed the job.
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('HDEL', KEYS[6], ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if redis.call('HLEN', KEYS[2]) > tonumber(ARGV[4]) and status and active[status] then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', stamp,
             'error', ARGV[2] .. ': ' .. ARGV[3])
  return 1
end
return 0
