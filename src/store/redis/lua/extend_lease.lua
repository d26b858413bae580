-- ARGV[2] = owner, ARGV[3] = lease_until, ARGV[4..] = touch ids. Extends owner's claim
-- (all its touches at once). Returns the ids it still holds: one that is gone was
-- recorded, or taken over by another claim after this one lapsed, and must not be sent.
local owner, lease = ARGV[2], tonumber(ARGV[3])
local held = {}
for i = 4, #ARGV do
    local f = redis.call("HMGET", tkey(ARGV[i]), "status", "lease_owner")
    if f[1] == "sending" and f[2] == owner then held[#held + 1] = ARGV[i] end
end
-- XX: a claim the reconciler already forgot (it had nothing left) is not revived.
if #held > 0 then redis.call("ZADD", IDX_LEASES, "XX", lease, owner) end
return held
