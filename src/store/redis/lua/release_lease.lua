-- ARGV[2] = owner. The claim is over: every outcome of it was recorded.
redis.call("ZREM", IDX_LEASES, ARGV[2])
redis.call("DEL", claim_ids(ARGV[2]))
return 1
