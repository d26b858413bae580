-- ARGV[2] = owner, ARGV[3] = lease_until, ARGV[4..] = touch ids. Extends the lease on
-- those of them owner is still sending. Returns how many.
local owner, lease = ARGV[2], tonumber(ARGV[3])
local n = 0
for i = 4, #ARGV do
    local id = ARGV[i]
    local k = tkey(id)
    local f = redis.call("HMGET", k, "status", "lease_owner")
    if f[1] == "sending" and f[2] == owner then
        redis.call("HSET", k, "lease_until", lease)
        redis.call("ZADD", IDX_LEASES, lease, id)
        n = n + 1
    end
end
return n
