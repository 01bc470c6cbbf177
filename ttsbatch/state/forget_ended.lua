-- Drop an ended or vanished job from the active set.
-- KEYS: job, the active set. ARGV: job id. Returns 1 if it was dropped.
if active[redis.call('HGET', KEYS[1], 'status')] then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
