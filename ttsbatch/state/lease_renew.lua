-- A live worker renews the leases it holds on one job's chunks.
-- KEYS: job, leases, owners. ARGV: now, ttl, then chunk id and owner pairs.
-- Returns the chunks whose lease is no longer the caller's (claimed for a
-- re-send, or stored by another): their worker should stop. None if the job's
-- state is gone (flushed): then nobody re-sends them either.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local lost = {}
local expiry = now + tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[2], expiry, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
