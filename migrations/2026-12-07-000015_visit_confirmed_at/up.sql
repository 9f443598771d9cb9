-- A field agent at the door may check in to a visit nobody confirmed: the visit keeps when
-- (and whether) the appointment was confirmed. Visits confirmed now keep their last change.
ALTER TABLE visits ADD COLUMN confirmed_at timestamptz;
UPDATE visits SET confirmed_at = updated_at WHERE status = 'confirmed';
