-- Indexes and foreign keys that `rapport seed` dropped for a bulk load and has not yet rebuilt.
-- The seed rebuilds each one and deletes its row in one transaction; a seed that was
-- interrupted leaves rows here, and the next seed rebuilds them before anything else.
CREATE TABLE seed_suspended (
    name       text PRIMARY KEY,
    definition text NOT NULL,
    -- Rebuilt longest first, so that two connections finish together.
    cost       integer NOT NULL DEFAULT 0
);
