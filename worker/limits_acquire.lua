-- Grant a lease on a provider if concurrency, pace and cooldown all allow it.
-- KEYS: leases, state. ARGV: now ms, lease id, ttl ms, max concurrency,
-- interval ms (1/rps), burst, state ttl ms.
-- Returns 0 (granted), -1 (full: wait for a release), or ms worth waiting.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local cooldown = tonumber(redis.call('HGET', KEYS[2], 'cooldown_until') or '0')
if cooldown > now then return cooldown - now end
local max = tonumber(ARGV[4])
local limit = math.floor(tonumber(redis.call('HGET', KEYS[2], 'limit') or max))
limit = math.max(1, math.min(limit, max))
if redis.call('ZCARD', KEYS[1]) >= limit then return -1 end
local interval = tonumber(ARGV[5])
local tat = math.max(tonumber(redis.call('HGET', KEYS[2], 'tat') or now), now)
local early = tat - now - interval * (tonumber(ARGV[6]) - 1)
if early > 0 then return math.max(1, math.ceil(early)) end
redis.call('HSET', KEYS[2], 'tat', tat + interval)
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 0
