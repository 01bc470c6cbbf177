-- A worker starts on a chunk: it takes the chunk's lease, unless another live
-- worker holds it. Its message was popped after every message of the job sent
-- before it (the broker's queues are FIFO), so each chunk still waiting in the
-- job's queue order ahead of it lost its message, or is a moment from starting:
-- it gets a lease of ARGV[6] seconds that nobody renews (the kombu window).
-- Only a message that may speak for the chunk's place passes others: the one
-- recorded as its sender ('' for the first dispatch: any), never a redelivery.
-- KEYS: job, leases, owners, queued, senders.
-- ARGV: now, chunk id, owner, task id, ttl, grace, redelivered (0/1).
-- Returns 1 (taken), 0 (another live worker holds it), -1 (the job is unknown).
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local chunk = ARGV[2]
local expiry = tonumber(redis.call('ZSCORE', KEYS[2], chunk))
local holder = redis.call('HGET', KEYS[3], chunk)
if expiry and expiry > now and holder and holder ~= ARGV[3] then return 0 end
local seq = redis.call('ZSCORE', KEYS[4], chunk)
if seq then
  local sender = redis.call('HGET', KEYS[5], chunk) or ''
  if ARGV[7] == '0' and (sender == '' or sender == ARGV[4]) then
    local grace = now + tonumber(ARGV[6])
    for _, passed in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. seq)) do
      redis.call('ZADD', KEYS[2], grace, passed)
      redis.call('ZREM', KEYS[4], passed)
      redis.call('HDEL', KEYS[5], passed)
    end
  end
  redis.call('ZREM', KEYS[4], chunk)
  redis.call('HDEL', KEYS[5], chunk)
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), chunk)
redis.call('HSET', KEYS[3], chunk, ARGV[3])
return 1
