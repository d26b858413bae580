-- Learning: when each touch got its first response (touches sent without one wait in
-- `touches_awaiting` until the response window closes and they become `ignored`),
-- responses, each contact's relationship state and notes, the statistics the learner
-- keeps, the suppression list (hashed addresses: what survives an erasure), and
-- answers kept for Idempotency-Key.
ALTER TABLE touches ADD COLUMN responded_at INTEGER;
CREATE INDEX touches_awaiting ON touches (sent_at, id) WHERE status = 'sent' AND responded_at IS NULL;

CREATE TABLE responses (
    contact_id TEXT NOT NULL,
    id         TEXT NOT NULL,
    at         INTEGER NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (contact_id, id)
);

CREATE TABLE relationships (
    contact_id TEXT PRIMARY KEY NOT NULL,
    version    INTEGER NOT NULL,
    state      TEXT NOT NULL,
    notes      TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE stats (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);

CREATE TABLE suppressions (
    hash   TEXT PRIMARY KEY NOT NULL,
    reason TEXT NOT NULL,
    at     INTEGER NOT NULL
);

CREATE TABLE idempotency (
    key         TEXT PRIMARY KEY NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER,
    body        TEXT,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX idempotency_expiry ON idempotency (expires_at);
