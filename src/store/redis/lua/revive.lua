-- ARGV[2] = now; ARGV[3..] = touch ids; KEYS = their hashes. A touch still `failed` and
-- not past its expiry goes back to `planned`, due now, attempts from zero, leaving the
-- dead letters. Returns the ids revived (the caller queues their jobs; a lost job is
-- re-queued by the reconciler from idx:wake).
local now = tonumber(ARGV[2])
local FAILED = P .. ":idx:failed"
local revived = {}
for i = 3, #ARGV do
    local id, k = ARGV[i], KEYS[i - 2]
    local f = redis.call("HMGET", k, "status", "expires_at", "reason")
    if f[1] == "failed" and num(f[2]) > now then
        redis.call("HSET", k, "status", "planned", "attempts", 0, "uncertain", 0, "next_attempt_at", now,
            "queued_at", now, "updated_at", now,
            "reason", "retried from dead letters after: " .. (f[3] or ""))
        redis.call("ZADD", IDX_WAKE, now, id)
        redis.call("ZREM", FAILED, id)
        move("failed", "planned")
        revived[#revived + 1] = id
    end
end
flush()
return revived
