-- React to a 429: a shared cooldown and half the concurrency (at most once a second).
-- KEYS: state. ARGV: now ms, cooldown ms, max, state ttl ms. Returns the new effective limit.
local until_ = now + tonumber(ARGV[2])
local cooldown = tonumber(redis.call('HGET', KEYS[1], 'cooldown_until') or '0')
if until_ > cooldown then redis.call('HSET', KEYS[1], 'cooldown_until', until_) end
local max = tonumber(ARGV[3])
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or max)
local halved = tonumber(redis.call('HGET', KEYS[1], 'halved_at') or '0')
if now - halved >= 1000 then
  limit = math.max(1, math.floor(limit / 2))
  redis.call('HSET', KEYS[1], 'limit', tostring(limit), 'halved_at', now)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return math.floor(limit)
