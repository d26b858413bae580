-- ARGV[2] = now, ARGV[3] = owner, ARGV[4..] = one JSON outcome each:
-- {id, status, reason, next, sent_at, undo}. Applied only to touches still `sending`
-- under owner's lease (fencing). Returns {id, next_attempt_at} of each applied outcome
-- that went back to `planned` (the caller queues their jobs), then the applied count.
local now, owner = tonumber(ARGV[2]), ARGV[3]
local requeue, applied = {}, 0
for i = 4, #ARGV do
    local o = cjson.decode(ARGV[i])
    local id = o["id"]
    local k = tkey(id)
    local f = redis.call("HMGET", k, "status", "lease_owner")
    if f[1] == "sending" and f[2] == owner then
        local st = o["status"]
        redis.call("HSET", k, "status", st, "updated_at", now)
        redis.call("HDEL", k, "lease_owner", "lease_until")
        if o["reason"] ~= cjson.null then redis.call("HSET", k, "reason", o["reason"]) end
        if o["sent_at"] ~= cjson.null then redis.call("HSET", k, "sent_at", o["sent_at"]) end
        if o["undo"] == 1 then redis.call("HINCRBY", k, "attempts", -1) end
        redis.call("ZREM", IDX_LEASES, id)
        redis.call("SREM", owner_key(owner), id)
        if st == "planned" then
            local next = tonumber(o["next"])
            redis.call("HSET", k, "next_attempt_at", next, "queued_at", now)
            redis.call("ZADD", IDX_WAKE, math.max(next, now), id)
            requeue[#requeue + 1] = {id, next}
        else
            redis.call("ZREM", IDX_EXPIRY, id)
        end
        move("sending", st)
        applied = applied + 1
    end
end
return {requeue, applied}
