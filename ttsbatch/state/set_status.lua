-- Move a job to a status.
-- KEYS: job. ARGV: now, new status, error ('' for none), only_if_active (0/1).
-- Returns 1 if the status changed.
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[4] == '1' and status and not active[status] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[3]) end
if not active[ARGV[2]] then redis.call('HSET', KEYS[1], 'finished_at', stamp) end
return 1
