-- A ledger entry's time is taken by the database when it is written, under its member's
-- lock, so the entries of a member are in the order they took effect and `balance_after`
-- chains in that order (a write that waited for the lock used to keep a time from before
-- the wait).
ALTER TABLE points_entries ALTER COLUMN created_at SET DEFAULT clock_timestamp();
