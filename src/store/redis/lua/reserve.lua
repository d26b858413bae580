-- ARGV[2] = owner; then 5 per reservation: touch id, contact id, channel, at, version.
-- In order, each one is taken only if the touch is still `sending` under owner's claim
-- and the contact's policy version is still the one the decision was made on; taking it
-- bumps the version, records the slot in the contact's `slots` (member "<touch> <channel>",
-- score = at) and on the touch. Returns 1 (taken) or 0 per reservation.
local owner = ARGV[2]
local out = {}
for i = 3, #ARGV, 5 do
    local id, contact, channel, at, version = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local c = ckey(contact)
    local k = c .. ":touch:" .. id
    local f = redis.call("HMGET", k, "status", "lease_owner", "slot")
    local current = redis.call("GET", c .. ":pv") or "0"
    if f[1] == "sending" and f[2] == owner and current == version then
        redis.call("INCR", c .. ":pv")
        -- A place left by an earlier attempt of this touch is replaced.
        if f[3] then redis.call("ZREM", c .. ":slots", f[3]) end
        local member = id .. " " .. channel
        redis.call("ZADD", c .. ":slots", at, member)
        redis.call("HSET", k, "slot_at", at, "slot", member, "channel", channel)
        out[#out + 1] = 1
    else
        out[#out + 1] = 0
    end
end
return out
