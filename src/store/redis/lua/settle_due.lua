-- ARGV[2] = before, ARGV[3] = reason, ARGV[4] = now, ARGV[5] = how many to look at per call.
-- `rapport store adopt`: touches still planned with their next attempt due by `before`,
-- and every touch still being sent (under any claim), may have been sent before the
-- store was lost; they become `skipped` with the reason, giving back their place
-- against the caps. A claim left with nothing being sent is forgotten.
-- Returns {how many, 1 if there may be more}.
local before, reason, now, limit = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local n = 0
local function settle(k, id, from)
    local f = redis.call("HMGET", k, "slot_at", "channel")
    if f[1] then
        redis.call("ZREM", ckey(contact_of(id)) .. ":slots", id .. " " .. (f[2] or ""))
    end
    redis.call("HSET", k, "status", "skipped", "reason", reason, "updated_at", now)
    redis.call("HDEL", k, "slot_at", "lease_owner")
    move(from, "skipped")
    n = n + 1
end
-- Planned touches by their next attempt (the index's score).
local waking = redis.call("ZRANGEBYSCORE", IDX_WAKE, "-inf", before, "LIMIT", 0, limit)
for _, id in ipairs(waking) do
    local k = tkey(id)
    redis.call("ZREM", IDX_WAKE, id)
    if redis.call("HGET", k, "status") == "planned" then settle(k, id, "planned") end
end
-- Claims: each is done with here (its touches settled, itself forgotten), so the next
-- call starts after it.
local owners = redis.call("ZRANGE", IDX_LEASES, 0, limit - 1)
for _, owner in ipairs(owners) do
    for _, id in ipairs(redis.call("LRANGE", claim_ids(owner), 0, -1)) do
        local k = tkey(id)
        local f = redis.call("HMGET", k, "status", "lease_owner")
        if f[1] == "sending" and f[2] == owner then settle(k, id, "sending") end
    end
    redis.call("ZREM", IDX_LEASES, owner)
    redis.call("DEL", claim_ids(owner))
end
flush()
local more = 0
if #waking == limit or #owners == limit then more = 1 end
return {n, more}
