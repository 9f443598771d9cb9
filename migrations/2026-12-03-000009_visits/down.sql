DROP INDEX complaints_assignee_due_idx;
DROP TRIGGER visit_due_customers_updated ON customers;
DROP TRIGGER visit_due_customers_inserted ON customers;
DROP FUNCTION visit_due_customers_updated(), visit_due_customers_inserted(), visit_due_refresh(uuid[]);
DROP TABLE visit_targets, visit_due, visit_cadence_overrides, visit_cadences, visit_follow_ups, visits, visit_plans;
ALTER TABLE users DROP COLUMN time_zone;
