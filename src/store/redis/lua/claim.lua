-- ARGV[2] = now, ARGV[3] = owner (unique to this claim), ARGV[4] = lease_until,
-- ARGV[5] = the store identity expected (fence), ARGV[6..] = touch ids, KEYS = their hashes. Due, unexpired touches that are planned (or sending under a
-- lapsed lease) become `sending`, leased to owner; overdue ones become `expired`.
-- Returns {claimed touches as {id, fields as read, new attempt count}, expired ids, the
-- store's write counter after this call (see record.lua)}.
local now, owner, lease = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
fence(ARGV[5])
local claimed, expired, ids = {}, {}, {}
for i = 6, #ARGV do
    local id, k = ARGV[i], KEYS[i - 5]
    -- One HGETALL reads a small hash in one pass (HMGET scans it once per field).
    local h = redis.call("HGETALL", k)
    local f = {}
    for j = 1, #h, 2 do f[h[j]] = h[j + 1] end
    local st = f["status"]
    if st == "planned" or (st == "sending" and lapsed(f["lease_owner"], now)) then
        if num(f["expires_at"]) <= now then
            expire(k, id, st, now)
            expired[#expired + 1] = id
        -- Not before its time: next_attempt_at is a lower bound (rounded up to the
        -- second when stored), and `now` here is rounded down.
        elseif num(f["next_attempt_at"] or f["scheduled_at"]) <= now then
            local attempts = num(f["attempts"]) + 1
            redis.call("HSET", k, "status", "sending", "lease_owner", owner, "updated_at", now,
                "attempts", attempts)
            if st == "planned" then redis.call("ZREM", IDX_WAKE, id) end
            move(st, "sending")
            -- The hash as read; the caller applies what just changed (status, attempts,
            -- updated_at).
            claimed[#claimed + 1] = {id, h, attempts}
            ids[#ids + 1] = id
        end
    end
end
if #ids > 0 then
    redis.call("ZADD", IDX_LEASES, lease, owner)
    for i = 1, #ids, 1000 do
        redis.call("RPUSH", claim_ids(owner), unpack(ids, i, math.min(i + 999, #ids)))
    end
end
flush()
return {claimed, expired, redis.call("INCR", P .. ":store:epoch")}
