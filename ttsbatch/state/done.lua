-- Count a stored chunk and decide atomically who enqueues finalize.
-- KEYS: job, done, events, errors, leases, owners, queued, senders.
-- ARGV: now, chunk id ('' to only check), chars, audio seconds, synthesized (0/1), claimant.
-- Returns {added, done, total, last}; {-1, 0, 0, 0} if the job is unknown.
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
if not total then return {-1, 0, 0, 0} end
local chunk = ARGV[2]
local added = 0
if chunk ~= '' then
  added = redis.call('SADD', KEYS[2], chunk)
  -- Stored: it holds no lease and waits in no queue any more.
  redis.call('ZREM', KEYS[5], chunk)
  redis.call('HDEL', KEYS[6], chunk)
  redis.call('ZREM', KEYS[7], chunk)
  redis.call('HDEL', KEYS[8], chunk)
  if added == 1 then
    redis.call('HINCRBY', KEYS[1], 'chars_done', ARGV[3])
    redis.call('HINCRBYFLOAT', KEYS[1], 'audio_seconds', ARGV[4])
    redis.call('RPUSH', KEYS[3], chunk .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
    redis.call('HDEL', KEYS[4], chunk)
    redis.call('HSET', KEYS[1], 'progress_at', stamp, 'rescues', 0)
  end
end
local done = redis.call('SCARD', KEYS[2])
local last = 0
if done >= total and active[redis.call('HGET', KEYS[1], 'status')] then
  local by = redis.call('HGET', KEYS[1], 'finalize_by')
  if not by then
    redis.call('HSET', KEYS[1], 'finalize_by', ARGV[6], 'status', 'stitching', 'stitching_at', stamp)
    last = 1
  elseif by == ARGV[6] then
    last = 1  -- the same message redelivered after its worker died: enqueue again
  end
end
return {added, done, total, last}
