-- ARGV[2] = since; ARGV[3..] = contact ids. For each contact that exists:
-- {id, version, last interaction ("" if none), slots as {member, score, ...},
--  touches scheduled at or after since as {{id, hash as read}, ...}}.
local since = ARGV[2]
local SEEN = P .. ":idx:seen"
local out = {}
for i = 3, #ARGV do
    local id = ARGV[i]
    local c = ckey(id)
    if redis.call("EXISTS", c .. ":contact") == 1 then
        local touches = {}
        for _, tid in ipairs(redis.call("ZRANGEBYSCORE", c .. ":touches", since, "+inf")) do
            touches[#touches + 1] = {tid, redis.call("HGETALL", c .. ":touch:" .. tid)}
        end
        out[#out + 1] = {
            id,
            redis.call("GET", c .. ":pv") or "0",
            redis.call("ZSCORE", SEEN, id) or "",
            redis.call("ZRANGEBYSCORE", c .. ":slots", since, "+inf", "WITHSCORES"),
            touches,
        }
    end
end
return out
