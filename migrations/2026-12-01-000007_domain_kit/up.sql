-- Domain events: one row per change, written by the write path in the transaction that makes
-- the change, so an event exists exactly when its change committed (a transactional outbox).
-- Webhook delivery and the change feed read it in commit order (docs/architecture.md):
-- `txid` is the writing transaction's id; a reader takes only rows whose txid is below the
-- oldest transaction still running (pg_snapshot_xmin), in (txid, seq) order, so no event can
-- later appear before a position it has passed.
CREATE TABLE events (
    id           uuid        PRIMARY KEY,
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    txid         bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    type         text        NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    subject_type text        NOT NULL,
    subject_id   uuid        NOT NULL,
    customer_id  uuid,
    actor_type   text        NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
    actor_id     uuid,
    data         jsonb       NOT NULL
);
-- The feed's and the delivery worker's walk in commit order.
CREATE UNIQUE INDEX events_feed_idx ON events (txid, seq);
-- A customer's events, for erasure (their data holds the customer as it was).
CREATE INDEX events_customer_idx ON events (customer_id) WHERE customer_id IS NOT NULL;

-- When a user's password last changed: the audit log records it (never the hash).
ALTER TABLE users ADD COLUMN password_changed_at timestamptz;
