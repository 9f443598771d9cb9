-- The due list reads its page from the index alone: the two columns it shows besides the
-- key ride in the index (an index-only scan instead of 21 heap pages scattered over the
-- table per page at a million customers).
DROP INDEX visit_due_owner_idx;
CREATE INDEX visit_due_owner_idx ON visit_due (owner_id, due_at, customer_id)
    INCLUDE (last_visit_at, tolerance_days) WHERE NOT planned;
DROP INDEX visit_due_all_idx;
CREATE INDEX visit_due_all_idx ON visit_due (due_at, customer_id)
    INCLUDE (owner_id, last_visit_at, tolerance_days) WHERE NOT planned;
