DROP INDEX visit_due_owner_idx;
CREATE INDEX visit_due_owner_idx ON visit_due (owner_id, due_at, customer_id) WHERE NOT planned;
DROP INDEX visit_due_all_idx;
CREATE INDEX visit_due_all_idx ON visit_due (due_at, customer_id) WHERE NOT planned;
