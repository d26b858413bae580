-- ARGV[2] = now, ARGV[3] = stale_before, ARGV[4] = how many to look at per index.
-- Expires overdue touches; marks stranded ones re-queued (planned and due before
-- stale_before with no job queued since, or sending under a lapsed lease).
-- Returns {expired count, ids to re-queue, 1 if there may be more}.
local now, stale, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local expired, requeue = 0, {}
local overdue = redis.call("ZRANGEBYSCORE", IDX_EXPIRY, "-inf", now, "LIMIT", 0, limit)
for _, id in ipairs(overdue) do
    local k = tkey(id)
    local f = redis.call("HMGET", k, "status", "lease_owner")
    if f[1] == "planned" or (f[1] == "sending" and lapsed(f[2], now)) then
        expire(k, id, f[1], now)
        expired = expired + 1
    elseif f[1] ~= "sending" then
        unindex(id)
    end
end
local waking = redis.call("ZRANGEBYSCORE", IDX_WAKE, "-inf", stale, "LIMIT", 0, limit)
for _, id in ipairs(waking) do
    local k = tkey(id)
    local f = redis.call("HMGET", k, "status", "next_attempt_at", "queued_at", "scheduled_at", "created_at")
    f[2], f[3] = f[2] or f[4], f[3] or f[5]
    if f[1] == "planned" and num(f[2]) <= stale and num(f[3]) <= stale then
        redis.call("HSET", k, "queued_at", now)
        redis.call("ZADD", IDX_WAKE, math.max(num(f[2]), now), id)
        requeue[#requeue + 1] = id
    elseif f[1] ~= "planned" then
        redis.call("ZREM", IDX_WAKE, id)
    end
end
-- Claims whose lease ran out (their worker died): their touches still `sending` under
-- them go back to the queue; a claim with none left is forgotten.
for _, owner in ipairs(redis.call("ZRANGEBYSCORE", IDX_LEASES, "-inf", now, "LIMIT", 0, limit)) do
    local open = 0
    for _, id in ipairs(redis.call("LRANGE", claim_ids(owner), 0, -1)) do
        local k = tkey(id)
        local f = redis.call("HMGET", k, "status", "lease_owner", "queued_at", "created_at")
        if f[1] == "sending" and f[2] == owner then
            open = open + 1
            if num(f[3] or f[4]) <= stale then
                redis.call("HSET", k, "queued_at", now)
                requeue[#requeue + 1] = id
            end
        end
    end
    if open == 0 then
        redis.call("ZREM", IDX_LEASES, owner)
        redis.call("DEL", claim_ids(owner))
    end
end
local more = 0
if #overdue == limit or #waking == limit then more = 1 end
flush()
return {expired, requeue, more}
