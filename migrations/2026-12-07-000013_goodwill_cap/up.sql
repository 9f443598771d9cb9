-- Goodwill points are club writes: an agent resolving a complaint grants at most this many
-- over all of the complaint's resolution cycles; managers, admins and keys with
-- `club:write` grant more.
ALTER TABLE club_settings
    ADD COLUMN goodwill_points_per_complaint integer NOT NULL DEFAULT 500
        CHECK (goodwill_points_per_complaint BETWEEN 0 AND 1000000);
