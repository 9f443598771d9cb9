CREATE INDEX events_customer_idx ON events (customer_id) WHERE customer_id IS NOT NULL;
DROP INDEX events_customer_feed_idx;
