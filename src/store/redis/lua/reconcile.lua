-- ARGV[2] = now, ARGV[3] = stale_before, ARGV[4] = how many to look at per index.
-- Expires overdue touches and marks stranded ones re-queued: planned and due before
-- stale_before with no job queued since, or sending under a lapsed claim.
-- Returns {expired count, ids to re-queue, 1 if there may be more}.
local now, stale, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local expired, requeue, acted = 0, {}, 0
-- Planned touches due by now, oldest first (a claim also expires overdue ones it meets).
local waking = redis.call("ZRANGEBYSCORE", IDX_WAKE, "-inf", now, "LIMIT", 0, limit)
for _, id in ipairs(waking) do
    local k = tkey(id)
    local f = redis.call("HMGET", k, "status", "expires_at", "next_attempt_at", "queued_at", "scheduled_at", "created_at")
    local next, queued = num(f[3] or f[5]), num(f[4] or f[6])
    if f[1] ~= "planned" then
        redis.call("ZREM", IDX_WAKE, id)
    elseif num(f[2]) <= now then
        expire(k, id, "planned", now)
        expired = expired + 1
        acted = acted + 1
    elseif next <= stale and queued <= stale then
        redis.call("HSET", k, "queued_at", now)
        redis.call("ZADD", IDX_WAKE, math.max(next, now), id)
        requeue[#requeue + 1] = id
        acted = acted + 1
    end
end
-- Claims whose lease ran out (their worker died): their touches still `sending` under
-- them expire or go back to the queue; a claim with none left is forgotten.
for _, owner in ipairs(redis.call("ZRANGEBYSCORE", IDX_LEASES, "-inf", now, "LIMIT", 0, limit)) do
    local open = 0
    for _, id in ipairs(redis.call("LRANGE", claim_ids(owner), 0, -1)) do
        local k = tkey(id)
        local f = redis.call("HMGET", k, "status", "lease_owner", "queued_at", "created_at", "expires_at")
        if f[1] == "sending" and f[2] == owner then
            if num(f[5]) <= now then
                expire(k, id, "sending", now)
                expired = expired + 1
            else
                open = open + 1
                if num(f[3] or f[4]) <= stale then
                    redis.call("HSET", k, "queued_at", now)
                    requeue[#requeue + 1] = id
                end
            end
        end
    end
    if open == 0 then
        redis.call("ZREM", IDX_LEASES, owner)
        redis.call("DEL", claim_ids(owner))
    end
end
local more = 0
if #waking == limit and acted > 0 then more = 1 end
flush()
return {expired, requeue, more}
