-- ARGV[2] = now, ARGV[3] = contact id, ARGV[4] = event id, ARGV[5] = its time,
-- ARGV[6] = the event as JSON. Insert-if-absent on the contact's timeline; a new event
-- is an interaction (at its time, never later than now), a known one changes nothing.
-- Returns 1 if new, 0 if known, -1 if there is no such contact.
local now, contact, id, at = tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local c = ckey(contact)
if redis.call("EXISTS", c .. ":contact") == 0 then return -1 end
local new = redis.call("HSETNX", c .. ":events", id, ARGV[6])
if new == 1 then
    redis.call("ZADD", P .. ":idx:seen", "GT", math.min(at, now), contact)
end
return new
