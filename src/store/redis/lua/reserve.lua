-- ARGV[2] = owner; then 5 per reservation: touch id, contact id, channel, at, version.
-- In order, each one is taken only if the touch is still `sending` under owner's claim
-- and the contact's policy version is still the one the decision was made on; taking it
-- bumps the version, records the slot in the contact's `slots` (member "<touch>
-- <channel>", score = at) and its time on the touch. A contact's reservations form a
-- chain, each decided assuming the ones before it were taken: once one is refused, so
-- is the rest of that contact's (another worker's reservation may have made a later
-- version match). Returns 1 (taken) or 0 each.
local owner = ARGV[2]
local out = {}
local refused = {}
for i = 3, #ARGV, 5 do
    local id, contact, channel, at, version = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local c = ckey(contact)
    local k = c .. ":touch:" .. id
    local f = redis.call("HMGET", k, "status", "lease_owner", "slot_at", "channel")
    if not refused[contact] and f[1] == "sending" and f[2] == owner
        and (redis.call("GET", c .. ":pv") or "0") == version then
        redis.call("INCR", c .. ":pv")
        -- A place left by an earlier attempt of this touch is replaced.
        if f[3] then redis.call("ZREM", c .. ":slots", id .. " " .. f[4]) end
        redis.call("ZADD", c .. ":slots", at, id .. " " .. channel)
        if channel == f[4] then
            redis.call("HSET", k, "slot_at", at)
        else
            redis.call("HSET", k, "slot_at", at, "channel", channel)
        end
        out[#out + 1] = 1
    else
        refused[contact] = true
        out[#out + 1] = 0
    end
end
return out
