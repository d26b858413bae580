-- The relationship policy: when each contact last interacted (the check-in clock), a
-- version bumped by every reservation, the place each touch holds against the caps,
-- and events on the contact's timeline.
ALTER TABLE contacts ADD COLUMN last_interaction_at INTEGER;
ALTER TABLE contacts ADD COLUMN policy_version INTEGER NOT NULL DEFAULT 0;
-- Contacts stored before this start their check-in clock now, as on Redis (counting
-- from their creation would make every old contact due a check-in at once).
UPDATE contacts SET last_interaction_at = CAST(strftime('%s', 'now') AS INTEGER);
CREATE INDEX contacts_idle ON contacts (last_interaction_at, id);

ALTER TABLE touches ADD COLUMN slot_at INTEGER;
CREATE INDEX touches_slots ON touches (contact_id, slot_at) WHERE slot_at IS NOT NULL;
CREATE INDEX touches_contact_due ON touches (contact_id, scheduled_at);

CREATE TABLE events (
    contact_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}',
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (contact_id, id)
);
