-- ARGV[2] = now; ARGV[3..] = one JSON record per touch (fields::touch_record).
-- Insert-if-absent. Returns the ids that were new.
local now = tonumber(ARGV[2])
local new = {}
for i = 3, #ARGV do
    local t = cjson.decode(ARGV[i])
    local id = t["id"]
    local k = tkey(id)
    if redis.call("EXISTS", k) == 0 then
        local sched = tonumber(t["scheduled_at"])
        redis.call("HSET", k, "id", id, "occasion", t["occasion"], "contact_id", t["contact_id"],
            "occurrence", t["occurrence"], "channel", t["channel"], "priority", t["priority"],
            "status", t["status"], "scheduled_at", sched, "next_attempt_at", sched,
            "expires_at", t["expires_at"], "attempts", 0, "queued_at", now,
            "created_at", now, "updated_at", now)
        if t["reason"] ~= cjson.null then
            redis.call("HSET", k, "reason", t["reason"])
        end
        redis.call("ZADD", ckey(t["contact_id"]) .. ":touches", sched, id)
        if t["status"] == "planned" then
            redis.call("ZADD", IDX_WAKE, math.max(sched, now), id)
            redis.call("ZADD", IDX_EXPIRY, t["expires_at"], id)
        end
        move(nil, t["status"])
        new[#new + 1] = id
    end
end
return new
