-- Shared by every rapport script (prepended). ARGV[1] is always the key prefix.
--
-- Per-contact keys carry the hash tag {c:<id>} (a later Redis Cluster shards by it); the
-- indexes below are global. Touch ids are `occasion:contact:occurrence` (occasion names
-- and contact ids contain no ':'), so a touch's key follows from its id, and its hash
-- does not repeat those three.
local P = ARGV[1]
-- The reconciler finds work through two indexes only (every write here is also a write
-- to the append-only file, so each index costs on every message):
local IDX_WAKE = P .. ":idx:wake"       -- planned touches, score = when they are due (or were queued)
local IDX_LEASES = P .. ":idx:leases"   -- claims (owners), score = lease_until
local STATUS = P .. ":stats:status"     -- status -> count

local function contact_of(id)
    return string.match(id, "^[^:]+:([^:]+):")
end
local function ckey(contact)
    return P .. ":{c:" .. contact .. "}"
end
local function tkey(id)
    return ckey(contact_of(id)) .. ":touch:" .. id
end
-- Status counts change in memory and are written once per script (flush()).
local deltas = {}
local function move(from, to)
    if from then deltas[from] = (deltas[from] or 0) - 1 end
    if to then deltas[to] = (deltas[to] or 0) + 1 end
end
local function flush()
    for status, d in pairs(deltas) do
        if d ~= 0 then redis.call("HINCRBY", STATUS, status, d) end
    end
end
local function num(v)
    return tonumber(v) or 0
end
-- A lease belongs to a claim (its owner), not to each touch: one entry in IDX_LEASES and
-- one list of the claim's touch ids, so claiming, renewing and ending a lease cost one
-- command per batch instead of one per touch.
local function claim_ids(owner)
    return P .. ":lease:" .. owner
end
-- Whether the lease of the claim `owner` has run out (or is gone).
local function lapsed(owner, now)
    if not owner or owner == "" then return true end
    local until_ = redis.call("ZSCORE", IDX_LEASES, owner)
    return (not until_) or tonumber(until_) <= now
end
-- lease_owner only means something while a touch is `sending`.
local function expire(k, id, from, now)
    redis.call("HSET", k, "status", "expired", "reason", "not sent before its expiry", "updated_at", now)
    if from == "planned" then redis.call("ZREM", IDX_WAKE, id) end
    move(from, "expired")
end
-- The fence: a store whose identity is not the one the calling process works with (it
-- came back empty, or another server answers at its address) lost its ledger; planning
-- into it or claiming from it would send again what was sent. `expected` "" checks
-- nothing (one-shot commands).
local function fence(expected)
    if expected ~= "" and redis.call("GET", P .. ":setting:store.id") ~= expected then
        error("STORE_LOST: the store's identity is not the one this process works with")
    end
end
