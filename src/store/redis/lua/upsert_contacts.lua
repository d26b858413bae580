-- ARGV[2] = now; ARGV[3..] = one JSON record per contact (fields::contact_record plus
-- "consent": true/false/null). Later records for one id win. A null consent keeps the
-- stored one (a re-import never re-subscribes an opt-out).
local now = ARGV[2]
local CONTACTS = P .. ":idx:contacts"
local function idx(kind, md)
    return P .. ":idx:" .. kind .. ":" .. md
end
for i = 3, #ARGV do
    local c = cjson.decode(ARGV[i])
    local id = c["id"]
    local k = ckey(id) .. ":contact"
    local old = redis.call("HMGET", k, "birthday_md", "since_md", "email_consent", "created_at")
    for _, pair in ipairs({{"birthday", "birthday_md", old[1]}, {"since", "since_md", old[2]}}) do
        local new_md = c[pair[2]]
        if new_md == cjson.null then new_md = nil end
        if pair[3] and pair[3] ~= new_md then
            redis.call("ZREM", idx(pair[1], pair[3]), id)
        end
        if new_md then
            redis.call("ZADD", idx(pair[1], new_md), 0, id)
        end
    end
    local consent = old[3] or "1"
    if c["consent"] == true then consent = "1" elseif c["consent"] == false then consent = "0" end
    redis.call("DEL", k)
    local fields = {"email_consent", consent, "created_at", old[4] or now, "updated_at", now}
    for name, value in pairs(c) do
        if name ~= "consent" and value ~= cjson.null then
            fields[#fields + 1] = name
            fields[#fields + 1] = tostring(value)
        end
    end
    redis.call("HSET", k, unpack(fields))
    redis.call("SADD", CONTACTS, id)
end
return #ARGV - 2
