-- Give a lease back; a success lets the concurrency limit climb by 1/limit.
-- KEYS: leases, state, wake. ARGV: lease id, ok (0/1), max, concurrency-1, state ttl ms.
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  local limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or '0')
  if limit > 0 then
    limit = limit + 1 / limit
    if limit >= tonumber(ARGV[3]) then redis.call('HDEL', KEYS[2], 'limit')
    else redis.call('HSET', KEYS[2], 'limit', tostring(limit)) end
  end
end
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return removed
