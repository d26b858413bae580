-- Channels: SMS consent beside email consent; settings the daemon keeps for itself
-- (the generated key that signs unsubscribe links, webhook endpoints disabled by a
-- 410); and an index over dead letters (failed touches) for `rapport dead-letters`.
ALTER TABLE contacts ADD COLUMN sms_consent INTEGER NOT NULL DEFAULT 1;

CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX touches_failed ON touches (updated_at, id) WHERE status = 'failed';

-- Attempts on a touch's current channel that ended without an answer (the provider may
-- have taken the message): one is retried, a second is not.
ALTER TABLE touches ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0;
