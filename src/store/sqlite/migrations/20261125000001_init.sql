-- Contacts: one row per external id. Month-day columns make "whose birthday is today
-- somewhere on Earth" an index lookup.
CREATE TABLE contacts (
    id             TEXT PRIMARY KEY NOT NULL,
    first_name     TEXT,
    last_name      TEXT,
    email          TEXT,
    phone          TEXT,
    timezone       TEXT,
    locale         TEXT,
    birthday       TEXT,
    birthday_md    TEXT,
    customer_since TEXT,
    since_md       TEXT,
    tier           TEXT NOT NULL,
    attributes     TEXT NOT NULL DEFAULT '{}',
    email_consent  INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
-- (day, id): the planner pages through one day's contacts in id order.
CREATE INDEX contacts_birthday_md ON contacts (birthday_md, id);
CREATE INDEX contacts_since_md ON contacts (since_md, id);

-- The touch ledger. Times are unix seconds (the queue's own resolution).
CREATE TABLE touches (
    id              TEXT PRIMARY KEY NOT NULL,
    occasion        TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    occurrence      TEXT NOT NULL,
    channel         TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    status          TEXT NOT NULL,
    scheduled_at    INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    reason          TEXT,
    lease_owner     TEXT,
    lease_until     INTEGER,
    -- when a job was last queued for it (the reconciler re-queues only old ones)
    queued_at       INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX touches_contact ON touches (contact_id);
CREATE INDEX touches_open ON touches (status, next_attempt_at) WHERE status IN ('planned', 'sending');
