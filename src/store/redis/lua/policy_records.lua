-- ARGV[2] = since; ARGV[3] = n, then n touch ids to leave out (the caller holds them);
-- then contact ids. For each contact that exists (every contact has an entry in
-- idx:seen): {id, version, last interaction, slots as {member, score, ...}, touches
-- scheduled at or after since as {{id, hash as read}, ...}}.
local since = ARGV[2]
local SEEN = P .. ":idx:seen"
local skip = {}
local n = tonumber(ARGV[3])
for i = 4, 3 + n do skip[ARGV[i]] = true end
local out = {}
for i = 4 + n, #ARGV do
    local id = ARGV[i]
    local seen = redis.call("ZSCORE", SEEN, id)
    if seen then
        local c = ckey(id)
        local touches = {}
        for _, tid in ipairs(redis.call("ZRANGEBYSCORE", c .. ":touches", since, "+inf")) do
            if not skip[tid] then
                touches[#touches + 1] = {tid, redis.call("HGETALL", c .. ":touch:" .. tid)}
            end
        end
        out[#out + 1] = {
            id,
            redis.call("GET", c .. ":pv") or "0",
            seen,
            redis.call("ZRANGEBYSCORE", c .. ":slots", since, "+inf", "WITHSCORES"),
            touches,
        }
    end
end
return out
