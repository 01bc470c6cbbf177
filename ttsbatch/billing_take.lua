-- Take a request's characters from a job's allowance and its cost from its
-- account's month, atomically, or neither (ttsbatch.billing.Billing.take).
-- KEYS[1]: the job's spend tally (characters); KEYS[2]: the account's month (hash, field cost).
-- ARGV: chars, max chars (-1: none), cost (USD), monthly cap (-1: none), seconds to keep.
-- Returns {1, ""} when taken; {0, spent chars} over the job's cap; {-1, spent USD} over the month's.
local chars = tonumber(ARGV[1])
local max_chars = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if max_chars >= 0 and spent + chars > max_chars then
    return {0, tostring(spent)}
end
if cap >= 0 then
    local month = tonumber(redis.call('HGET', KEYS[2], 'cost') or '0')
    if month + cost > cap then
        return {-1, tostring(month)}
    end
end
redis.call('INCRBY', KEYS[1], chars)
redis.call('EXPIRE', KEYS[1], ARGV[5])
if cost > 0 then
    redis.call('HINCRBYFLOAT', KEYS[2], 'cost', cost)
    redis.call('EXPIRE', KEYS[2], ARGV[5])
end
return {1, ''}
