-- ARGV[2] = field ("email_consent" or "sms_consent"), ARGV[3] = 1 or 0, ARGV[4] = now;
-- KEYS[1] = the contact's key. Changes one field of the stored JSON in place (a
-- concurrent re-import cannot undo it between a read and a write). Returns 1 if the
-- contact exists, else 0.
local raw = redis.call("GET", KEYS[1])
if not raw then return 0 end
local c = cjson.decode(raw)
c[ARGV[2]] = tonumber(ARGV[3])
c["updated_at"] = tonumber(ARGV[4])
redis.call("SET", KEYS[1], cjson.encode(c))
return 1
