-- ARGV[2] = now, ARGV[3] = the store identity expected (fence); then 7 per touch: id,
-- channel, priority, status, scheduled_at, expires_at, reason ("" for none); KEYS: 2 per
-- touch, its hash and its contact's list of touches. Insert-if-absent. Returns the ids
-- that were new.
local now = tonumber(ARGV[2])
fence(ARGV[3])
local new = {}
for i = 4, #ARGV, 7 do
    local n = (i - 4) / 7
    local k, list = KEYS[2 * n + 1], KEYS[2 * n + 2]
    local id, status, sched, expires, reason = ARGV[i], ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[i + 6]
    -- The contact's list of touches doubles as the existence check.
    if redis.call("ZADD", list, "NX", sched, id) == 1 then
        -- Left out until they change: next_attempt_at (= scheduled_at), attempts (0),
        -- queued_at and updated_at (= created_at). Fewer fields, less to write and log.
        if reason ~= "" then
            redis.call("HSET", k, "channel", ARGV[i + 1], "priority", ARGV[i + 2], "status", status,
                "scheduled_at", sched, "expires_at", expires, "created_at", now, "reason", reason)
        else
            redis.call("HSET", k, "channel", ARGV[i + 1], "priority", ARGV[i + 2], "status", status,
                "scheduled_at", sched, "expires_at", expires, "created_at", now)
        end
        if status == "planned" then
            redis.call("ZADD", IDX_WAKE, math.max(sched, now), id)
        end
        move(nil, status)
        new[#new + 1] = id
    end
end
flush()
return new
