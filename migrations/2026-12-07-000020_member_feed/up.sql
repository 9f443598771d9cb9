-- A member's own feed walks one customer's events in commit order: the index seeks to the
-- customer and reads their events from the cursor on, whatever the size of the whole feed.
-- It also serves every lookup by customer the narrower index did.
CREATE INDEX events_customer_feed_idx ON events (customer_id, txid, seq) WHERE customer_id IS NOT NULL;
DROP INDEX events_customer_idx;
