ALTER TABLE points_entries ALTER COLUMN created_at SET DEFAULT now();
