-- One reservation under a provider rate limit: the GCRA step of `src/ratelimit.rs`, on
-- Redis' clock so replicas whose clocks disagree still share one schedule.
-- KEYS[1] = the limiter's TAT (theoretical arrival time, microseconds since the epoch on
-- Redis' clock; absent once idle), ARGV[2] = interval (microseconds, >= 1),
-- ARGV[3] = burst (>= 1). Returns how many microseconds the caller waits for its place.
--
-- Calling TIME before writing is fine because scripts replicate their effects (always
-- since Redis 7, by default since 5): replicas and the AOF get the SET with its value
-- and an absolute expiry, never a script to run again on another clock.
local interval, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call("TIME")
-- Microseconds since the epoch fit a Lua number (a double) exactly until the year 2255.
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = math.max(tonumber(redis.call("GET", KEYS[1])) or 0, now)
local wait = math.max(0, tat - (burst - 1) * interval - now)
tat = tat + interval
-- Kept only while it still matters: a TAT in the past is the same as none. Numbers are
-- formatted here, as integers, rather than left to Redis (which may write 1.7e+15).
local ttl_ms = math.ceil((tat - now) / 1000)
redis.call("SET", KEYS[1], string.format("%.0f", tat), "PX", string.format("%.0f", ttl_ms))
return wait
