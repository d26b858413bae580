-- ARGV[2] = now, ARGV[3] = owner, ARGV[4] = lease_until, ARGV[5..] = touch ids.
-- Due, unexpired touches that are planned (or sending under a lapsed lease) become
-- `sending`, leased to owner; overdue ones become `expired`.
-- Returns {claimed touches as HGETALL lists, expired ids}.
local now, owner, lease = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local claimed, expired = {}, {}
for i = 5, #ARGV do
    local id = ARGV[i]
    local k = tkey(id)
    local f = redis.call("HMGET", k, "status", "expires_at", "next_attempt_at", "lease_until", "lease_owner")
    local st = f[1]
    if st == "planned" or (st == "sending" and num(f[4]) <= now) then
        if num(f[2]) <= now then
            expire(k, id, st, f[5], now)
            expired[#expired + 1] = id
        -- `+ 1`: the queue runs jobs by whole seconds; a job may start a moment early.
        elseif num(f[3]) <= now + 1 then
            if f[5] then redis.call("SREM", owner_key(f[5]), id) end
            redis.call("HSET", k, "status", "sending", "lease_owner", owner, "lease_until", lease, "updated_at", now)
            redis.call("HINCRBY", k, "attempts", 1)
            redis.call("ZREM", IDX_WAKE, id)
            redis.call("ZADD", IDX_LEASES, lease, id)
            redis.call("SADD", owner_key(owner), id)
            move(st, "sending")
            claimed[#claimed + 1] = redis.call("HGETALL", k)
        end
    end
end
return {claimed, expired}
