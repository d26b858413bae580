-- ARGV[2] = now, ARGV[3] = contact id, ARGV[4..] = the contact's address hashes.
-- Erases the contact and everything keyed by it (touches, their places in the global
-- indexes and the status counts, events, responses, relationship, caps), and keeps the
-- hashes on the suppression list. Returns 1, or 0 if there was no such contact.
local now, contact = tonumber(ARGV[2]), ARGV[3]
local c = ckey(contact)
local raw = redis.call("GET", c .. ":contact")
if not raw then return 0 end
local record = cjson.decode(raw)
for _, pair in ipairs({{"birthday", "birthday_md"}, {"since", "since_md"}}) do
    local md = record[pair[2]]
    if md and md ~= cjson.null then
        redis.call("ZREM", P .. ":idx:" .. pair[1] .. ":" .. md, contact)
    end
end
redis.call("SREM", P .. ":idx:contacts", contact)
local phone = record["phone"]
if phone and phone ~= cjson.null then
    redis.call("SREM", P .. ":idx:phone:" .. phone, contact)
end
redis.call("ZREM", P .. ":idx:seen", contact)
for _, id in ipairs(redis.call("ZRANGE", c .. ":touches", 0, -1)) do
    local k = tkey(id)
    local status = redis.call("HGET", k, "status")
    if status then move(status, nil) end
    redis.call("ZREM", IDX_WAKE, id)
    redis.call("ZREM", P .. ":idx:failed", id)
    redis.call("ZREM", P .. ":idx:awaiting", id)
    redis.call("DEL", k)
end
for _, suffix in ipairs({":contact", ":touches", ":events", ":responses", ":rel", ":slots", ":pv"}) do
    redis.call("DEL", c .. suffix)
end
for i = 4, #ARGV do
    redis.call("HSETNX", P .. ":suppressed", ARGV[i], cjson.encode({reason = "erased", at = now}))
end
flush()
return 1
