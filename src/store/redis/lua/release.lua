-- Moves due jobs from rapport's delayed set towards apalis' queue, in bounded steps.
-- KEYS[1] = delayed zset (score = run_at, member = "<ulid> <payload>"),
-- KEYS[2] = releasing zset (members being pushed, score = when taken),
-- KEYS[3] = apalis' scheduled zset, KEYS[4] = apalis' active list.
-- ARGV[2] = now, ARGV[3] = at most this many, ARGV[4] = hold off while apalis already
-- has this many jobs waiting (its fetch promotes every due job with one Lua `unpack`,
-- which fails past ~8000 ids and would then stop every worker on every fetch).
-- Members move to `releasing` until the caller has pushed them and removes them; ones
-- left there a minute (the caller died) go back to `delayed`. Returns the members taken.
local now, limit, backlog = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for _, m in ipairs(redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now - 60, "LIMIT", 0, 1000)) do
    redis.call("ZREM", KEYS[2], m)
    redis.call("ZADD", KEYS[1], now, m)
end
local waiting = redis.call("ZCARD", KEYS[3]) + redis.call("LLEN", KEYS[4])
if waiting >= backlog then return {} end
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, math.min(limit, backlog - waiting))
for _, m in ipairs(due) do
    redis.call("ZREM", KEYS[1], m)
    redis.call("ZADD", KEYS[2], now, m)
end
return due
