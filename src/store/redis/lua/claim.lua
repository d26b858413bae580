-- ARGV[2] = now, ARGV[3] = owner (unique to this claim), ARGV[4] = lease_until,
-- ARGV[5..] = touch ids. Due, unexpired touches that are planned (or sending under a
-- lapsed lease) become `sending`, leased to owner; overdue ones become `expired`.
-- Returns {claimed touches as {id, field list}, expired ids}.
local now, owner, lease = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local FIELDS = {"status", "expires_at", "next_attempt_at", "lease_owner", "attempts", "channel",
    "priority", "scheduled_at", "reason", "created_at", "sent_at"}
local claimed, expired, ids = {}, {}, {}
for i = 5, #ARGV do
    local id = ARGV[i]
    local k = tkey(id)
    local f = redis.call("HMGET", k, unpack(FIELDS))
    local st = f[1]
    if st == "planned" or (st == "sending" and lapsed(f[4], now)) then
        if num(f[2]) <= now then
            expire(k, id, st, now)
            expired[#expired + 1] = id
        -- `+ 1`: the queue runs jobs by whole seconds; a job may start a moment early.
        elseif num(f[3]) <= now + 1 then
            local attempts = num(f[5]) + 1
            redis.call("HSET", k, "status", "sending", "lease_owner", owner, "updated_at", now,
                "attempts", attempts)
            if st == "planned" then redis.call("ZREM", IDX_WAKE, id) end
            move(st, "sending")
            local touch = {"status", "sending", "attempts", attempts, "updated_at", now}
            for j = 2, #FIELDS do
                if FIELDS[j] ~= "attempts" and FIELDS[j] ~= "lease_owner" and f[j] then
                    touch[#touch + 1] = FIELDS[j]
                    touch[#touch + 1] = f[j]
                end
            end
            claimed[#claimed + 1] = {id, touch}
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
return {claimed, expired}
