-- Prelude of every script that needs the time: ARGV[1] is the time of the call
-- in seconds, either the caller's own clock (tests keep theirs) or '' for
-- Redis's (TIME), the one clock every machine of a cluster shares.
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1e6
end
local stamp = string.format('%.6f', now)
