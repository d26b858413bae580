-- ARGV[2] = now, ARGV[3] = contact id, ARGV[4] = the relationship version the change
-- was computed from, ARGV[5] = the change as JSON:
--   state (the new state as a JSON string, or null: keep it), notes (to append),
--   tier, consent ({{channel, 0|1}}), suppress ({reason, channels} or null) with
--   hashes (the hashes of those channels' addresses), response ({id, record} or null), settle ({touch,
--   "responded"|"ignored"} or null), interaction (unix time or null), stats (counter
--   names).
-- All or nothing. Returns {"applied"}, {"conflict"}, {"nocontact"} or
-- {"duplicate", record}.
local now, contact, version = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local change = cjson.decode(ARGV[5])
local c = ckey(contact)
local ck = c .. ":contact"
local raw = redis.call("GET", ck)
if not raw then return {"nocontact"} end
local rel = c .. ":rel"
local cur = redis.call("HMGET", rel, "version", "notes")
if num(cur[1]) ~= version then return {"conflict"} end
local function present(v)
    if v == cjson.null then return nil end
    return v
end
-- Every check comes before the first write: a refused change leaves nothing behind.
local response = present(change["response"])
if response then
    local known = redis.call("HGET", c .. ":responses", response["id"])
    if known then return {"duplicate", known} end
end
local settle = present(change["settle"])
local tk, tstatus
if settle then
    tk = tkey(settle[1])
    local f = redis.call("HMGET", tk, "status", "responded_at")
    tstatus = f[1]
    if f[2] or not tstatus then return {"conflict"} end
    if settle[2] == "responded" then
        if tstatus ~= "sent" and tstatus ~= "ignored" then return {"conflict"} end
    elseif tstatus ~= "sent" then
        return {"conflict"}
    end
end
if response then
    redis.call("HSET", c .. ":responses", response["id"], response["record"])
end
if settle then
    if settle[2] == "responded" then
        redis.call("HSET", tk, "responded_at", now, "status", "sent", "updated_at", now)
        if tstatus == "ignored" then move("ignored", "sent") end
    else
        redis.call("HSET", tk, "status", "ignored", "updated_at", now)
        move("sent", "ignored")
    end
    redis.call("ZREM", P .. ":idx:awaiting", settle[1])
end
local record = cjson.decode(raw)
local changed = false
local tier = present(change["tier"])
if tier then
    record["tier"] = tier
    changed = true
end
for _, pair in ipairs(change["consent"]) do
    local field = ({email = "email_consent", sms = "sms_consent"})[pair[1]]
    if field then
        record[field] = pair[2]
        changed = true
    end
end
local suppress = present(change["suppress"])
if suppress then
    for _, h in ipairs(change["hashes"]) do
        redis.call("HSETNX", P .. ":suppressed", h, cjson.encode({reason = suppress["reason"], at = now}))
    end
    for _, ch in ipairs(suppress["channels"]) do
        local field = ({email = "email_consent", sms = "sms_consent"})[ch]
        if field then record[field] = 0 end
    end
    changed = true
end
if changed then
    record["updated_at"] = now
    redis.call("SET", ck, cjson.encode(record))
end
local interaction = present(change["interaction"])
if interaction then
    redis.call("ZADD", P .. ":idx:seen", "GT", math.min(interaction, now), contact)
end
for _, name in ipairs(change["stats"]) do
    redis.call("HINCRBY", P .. ":stats:learn", name, 1)
end
-- Notes: the stored ones and the new, the oldest dropped past ARGV[6].
local notes = {}
if cur[2] then notes = cjson.decode(cur[2]) end
for _, n in ipairs(change["notes"]) do notes[#notes + 1] = n end
local keep = tonumber(ARGV[6])
while #notes > keep do table.remove(notes, 1) end
local encoded = "[]"
if #notes > 0 then encoded = cjson.encode(notes) end
local fields = {"version", version + 1, "notes", encoded}
local state = present(change["state"])
if state then
    fields[#fields + 1] = "state"
    fields[#fields + 1] = state
end
redis.call("HSET", rel, unpack(fields))
flush()
return {"applied"}
