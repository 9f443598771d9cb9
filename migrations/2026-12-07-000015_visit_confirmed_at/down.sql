ALTER TABLE visits DROP COLUMN confirmed_at;
