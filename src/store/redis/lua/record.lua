-- ARGV[2] = now, ARGV[3] = owner; then 5 per outcome: id, status, reason ("" for none),
-- next attempt ("" unless back to `planned`), 1 to take back the attempt (else 0).
-- Applied only to touches still `sending` under owner's lease (fencing). Returns
-- {{id, next} of each applied outcome back in `planned` (the caller queues their
-- jobs), applied count}.
local now, owner = tonumber(ARGV[2]), ARGV[3]
local requeue, applied = {}, 0
for i = 4, #ARGV, 5 do
    local id, st, reason, next = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local k = tkey(id)
    local f = redis.call("HMGET", k, "status", "lease_owner", "attempts", "reason")
    if f[1] == "sending" and f[2] == owner then
        local attempts = num(f[3])
        if ARGV[i + 4] == "1" then attempts = attempts - 1 end
        if reason == "" then reason = f[4] or "" end
        redis.call("ZREM", IDX_LEASES, id)
        if st == "planned" then
            redis.call("HSET", k, "status", st, "updated_at", now, "next_attempt_at", next,
                "queued_at", now, "lease_owner", "", "lease_until", 0, "attempts", attempts,
                "reason", reason)
            redis.call("ZADD", IDX_WAKE, math.max(tonumber(next), now), id)
            requeue[#requeue + 1] = {id, next}
        else
            redis.call("HSET", k, "status", st, "updated_at", now, "lease_owner", "",
                "lease_until", 0, "attempts", attempts, "reason", reason,
                "sent_at", st == "sent" and now or "")
            redis.call("ZREM", IDX_EXPIRY, id)
        end
        move("sending", st)
        applied = applied + 1
    end
end
flush()
return {requeue, applied}
