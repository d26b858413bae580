-- ARGV[2] = owner, ARGV[3] = lease_until. Extends the lease on every touch owner is still
-- sending. Returns how many.
local owner, lease = ARGV[2], tonumber(ARGV[3])
local n = 0
for _, id in ipairs(redis.call("SMEMBERS", owner_key(owner))) do
    local k = tkey(id)
    local f = redis.call("HMGET", k, "status", "lease_owner")
    if f[1] == "sending" and f[2] == owner then
        redis.call("HSET", k, "lease_until", lease)
        redis.call("ZADD", IDX_LEASES, lease, id)
        n = n + 1
    else
        redis.call("SREM", owner_key(owner), id)
    end
end
return n
