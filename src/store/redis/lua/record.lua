-- ARGV[2] = now, ARGV[3] = owner; then 6 per outcome: id, status, reason ("" for none),
-- next attempt ("" unless back to `planned`), the counts ("1" take back the attempt,
-- "r" attempts and uncertain ones from zero (a new channel), "u" one more uncertain
-- attempt, "0" neither), the channel to move to ("" to keep it);
-- KEYS = the touches' hashes.
-- Applied only to touches still `sending` under owner's claim (fencing). Returns
-- {{id, next} of each applied outcome back in `planned` (the caller queues their
-- jobs), applied count, the store's write counter after this call}.
-- A `sent` touch keeps (or takes) its slot against the caps and counts as an
-- interaction; any other outcome gives the slot back.
local now, owner = tonumber(ARGV[2]), ARGV[3]
local SEEN = P .. ":idx:seen"
local requeue, applied = {}, 0
local FAILED = P .. ":idx:failed"
for i = 4, #ARGV, 6 do
    local id, st, reason, next = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local k = KEYS[(i - 4) / 6 + 1]
    local f = redis.call("HMGET", k, "status", "lease_owner", "slot_at", "channel", "tried")
    if f[1] == "sending" and f[2] == owner then
        local contact = contact_of(id)
        local slots = ckey(contact) .. ":slots"
        if st == "sent" then
            if not f[3] then
                redis.call("ZADD", slots, now, id .. " " .. f[4])
                redis.call("HSET", k, "slot_at", now)
            end
            redis.call("ZADD", SEEN, "GT", now, contact)
        elseif f[3] then
            redis.call("ZREM", slots, id .. " " .. f[4])
            redis.call("HDEL", k, "slot_at")
        end
        local args = {"status", st, "updated_at", now}
        if reason ~= "" then
            args[#args + 1] = "reason"
            args[#args + 1] = reason
        end
        if ARGV[i + 5] ~= "" then
            -- A move to another channel: the one it leaves joins those it tried.
            args[#args + 1] = "channel"
            args[#args + 1] = ARGV[i + 5]
            args[#args + 1] = "tried"
            args[#args + 1] = (f[5] and f[5] ~= "") and (f[5] .. "," .. f[4]) or f[4]
        end
        local counts = ARGV[i + 4]
        if counts == "1" then
            args[#args + 1] = "attempts"
            args[#args + 1] = num(redis.call("HGET", k, "attempts")) - 1
        elseif counts == "r" then
            args[#args + 1] = "attempts"
            args[#args + 1] = 0
            args[#args + 1] = "uncertain"
            args[#args + 1] = 0
        elseif counts == "u" then
            args[#args + 1] = "uncertain"
            args[#args + 1] = num(redis.call("HGET", k, "uncertain")) + 1
        end
        if st == "planned" then
            args[#args + 1] = "next_attempt_at"
            args[#args + 1] = next
            args[#args + 1] = "queued_at"
            args[#args + 1] = now
            redis.call("ZADD", IDX_WAKE, math.max(tonumber(next), now), id)
            requeue[#requeue + 1] = {id, next}
        elseif st == "sent" then
            args[#args + 1] = "sent_at"
            args[#args + 1] = now
            -- Waits for its first response, or the end of the response window.
            redis.call("ZADD", P .. ":idx:awaiting", now, id)
        elseif st == "failed" then
            -- Dead letters, in the order they failed (`rapport dead-letters`).
            redis.call("ZADD", FAILED, now, id)
        end
        redis.call("HSET", k, unpack(args))
        move("sending", st)
        applied = applied + 1
    end
end
flush()
-- Every recording moves the store's write counter on: a store that later shows a lower
-- one went back in time (a failover to a replica that had not caught up), and the
-- outcomes recorded since are lost (see `custody`).
return {requeue, applied, redis.call("INCR", P .. ":store:epoch")}
