-- KEYS[1] = apalis' active list, KEYS[2] = its workers zset, KEYS[3] = its job data hash,
-- KEYS[4] = its dead set, KEYS[5] = rapport's quarantine hash (id -> reason);
-- ARGV[2] = apalis' inflight set prefix, ARGV[3] = its job meta prefix.
-- A queue job apalis cannot decode (no payload, or metadata without a readable attempt
-- count, limit or status) makes every fetch that meets it fail, stopping the worker and,
-- once its in-flight set is re-queued, the next one. Such jobs are moved aside: out of
-- the active list and every worker's in-flight set, into apalis' dead set, with the
-- reason kept in the quarantine hash. Returns the ids moved.
local active, workers, data, dead, quarantine = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local inflight, meta = ARGV[2], ARGV[3]
local STATUSES = {Pending = true, Queued = true, Running = true, Done = true, Failed = true, Killed = true}
-- apalis reads the counts as u32.
local function unsigned(v)
    return v and string.match(v, "^%d+$") ~= nil and #v <= 10 and tonumber(v) <= 4294967295
end
-- Why apalis could not decode job `id`, or nil.
local function poison(id)
    if id == "" then return "an empty id" end
    if redis.call("HEXISTS", data, id) == 0 then return "no payload" end
    local m = redis.call("HMGET", meta .. ":" .. id, "attempts", "max_attempts", "status")
    if not unsigned(m[1]) then return "no readable attempt count" end
    if not unsigned(m[2]) then return "no readable attempt limit" end
    if not STATUSES[m[3] or ""] then return "no readable status" end
    return nil
end
local moved = {}
local function set_aside(id, why)
    redis.call("SADD", dead, id)
    redis.call("HSET", quarantine, id, "dead-lettered by rapport: undecodable queue job (" .. why .. ")")
    moved[#moved + 1] = id
end
for _, id in ipairs(redis.call("LRANGE", active, 0, -1)) do
    local why = poison(id)
    if why then
        redis.call("LREM", active, 0, id)
        set_aside(id, why)
    end
end
for _, w in ipairs(redis.call("ZRANGE", workers, 0, -1)) do
    local set = inflight .. ":" .. w
    for _, id in ipairs(redis.call("SMEMBERS", set)) do
        local why = poison(id)
        if why then
            redis.call("SREM", set, id)
            set_aside(id, why)
        end
    end
end
return moved
