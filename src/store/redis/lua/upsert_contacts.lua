-- ARGV[2] = now; ARGV[3..] = one JSON record per contact (fields::contact_record plus
-- "consent" and "sms": true/false/null, email and SMS consent; "email_hash" and
-- "phone_hash": the addresses' suppression hashes, not stored). Later records for one id win. A null consent keeps the
-- stored one (a re-import never re-subscribes an opt-out). A contact is stored as one
-- JSON string: reading it back (every send) is one GET.
local now = tonumber(ARGV[2])
local CONTACTS = P .. ":idx:contacts"
local function idx(kind, md)
    return P .. ":idx:" .. kind .. ":" .. md
end
local function present(v)
    if v == cjson.null then return nil end
    return v
end
for i = 3, #ARGV do
    local c = cjson.decode(ARGV[i])
    local id = c["id"]
    local k = ckey(id) .. ":contact"
    local raw = redis.call("GET", k)
    local old = {}
    if raw then old = cjson.decode(raw) end
    for _, pair in ipairs({{"birthday", "birthday_md"}, {"since", "since_md"}}) do
        local before, after = present(old[pair[2]]), present(c[pair[2]])
        if before and before ~= after then
            redis.call("ZREM", idx(pair[1], before), id)
        end
        if after then
            redis.call("ZADD", idx(pair[1], after), 0, id)
        end
    end
    local consent = old["email_consent"] or 1
    if c["consent"] == true then consent = 1 elseif c["consent"] == false then consent = 0 end
    c["consent"] = nil
    c["email_consent"] = consent
    local sms = old["sms_consent"] or 1
    if c["sms"] == true then sms = 1 elseif c["sms"] == false then sms = 0 end
    c["sms"] = nil
    c["sms_consent"] = sms
    -- An address on the suppression list (a complaint, a hard bounce, an erasure) gets
    -- no consent back, whatever the import says.
    for _, pair in ipairs({{"email_hash", "email_consent"}, {"phone_hash", "sms_consent"}}) do
        local h = present(c[pair[1]])
        if h and redis.call("HEXISTS", P .. ":suppressed", h) == 1 then c[pair[2]] = 0 end
        c[pair[1]] = nil
    end
    -- The phone index (inbound SMS): every contact with a number, per number.
    local before, after = present(old["phone"]), present(c["phone"])
    if before and before ~= after then
        redis.call("SREM", P .. ":idx:phone:" .. before, id)
    end
    if after then redis.call("SADD", P .. ":idx:phone:" .. after, id) end
    -- A row that names no tier keeps the stored one (a learned move survives a sync).
    if c["keep_tier"] == true and old["tier"] then c["tier"] = old["tier"] end
    c["keep_tier"] = nil
    c["created_at"] = old["created_at"] or now
    c["updated_at"] = now
    redis.call("SET", k, cjson.encode(c))
    redis.call("SADD", CONTACTS, id)
    -- The check-in clock starts when rapport first sees the contact.
    redis.call("ZADD", P .. ":idx:seen", "NX", now, id)
end
return #ARGV - 2
