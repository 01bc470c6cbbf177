-- Prelude of the provider limits' scripts: ARGV[1] is the time of the call in
-- milliseconds, the caller's own clock (tests keep theirs), or '' for Redis's
-- (TIME), the one clock every worker shares.
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
