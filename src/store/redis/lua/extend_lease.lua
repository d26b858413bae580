-- ARGV[2] = owner, ARGV[3] = lease_until, ARGV[4..] = touch ids. Extends owner's claim
-- (all its touches at once). Returns how many of the ids it still holds.
local owner, lease = ARGV[2], tonumber(ARGV[3])
local n = 0
for i = 4, #ARGV do
    local f = redis.call("HMGET", tkey(ARGV[i]), "status", "lease_owner")
    if f[1] == "sending" and f[2] == owner then n = n + 1 end
end
if n > 0 then redis.call("ZADD", IDX_LEASES, "XX", lease, owner) end
return n
