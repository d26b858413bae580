-- The channels a touch moved away from, comma-separated, oldest first. NULL: it has
-- not moved, or it was recorded before this column (its reason then names them).
ALTER TABLE touches ADD COLUMN tried TEXT;
