-- The fallback for what no lease covers: claim the rescue of a job that stored
-- no chunk and held no live chunk lease (running), or did not start stitching
-- with no finalize holding the lock (stitching), for ARGV[2] seconds, doubled
-- after each rescue so that a job waiting behind a long queue is not re-sent
-- again and again. A live lease is progress: the wait starts again.
-- KEYS: job, finalize lock, leases. ARGV: now, seconds without progress.
-- Returns 1 (re-send chunks) or 2 (re-send finalize) to the one caller that claims it, else 0.
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'stitching' then return 0 end
if status == 'stitching' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if status == 'running' and redis.call('ZCOUNT', KEYS[3], '(' .. stamp, '+inf') > 0 then
  redis.call('HSET', KEYS[1], 'progress_at', stamp)
  return 0
end
local last = tonumber(redis.call('HGET', KEYS[1], 'progress_at'))
local rescues = tonumber(redis.call('HGET', KEYS[1], 'rescues') or '0')
if last and now - last < tonumber(ARGV[2]) * 2 ^ rescues then return 0 end
redis.call('HSET', KEYS[1], 'progress_at', stamp, 'rescues', rescues + 1)
redis.call('HINCRBY', KEYS[1], 'stalls', 1)
if status == 'running' then return 1 end
return 2
