-- Inbound SMS names its sender by phone number: find the contact by it.
CREATE INDEX contacts_phone ON contacts (phone, updated_at) WHERE phone IS NOT NULL;
