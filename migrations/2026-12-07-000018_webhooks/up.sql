-- Webhook subscriptions: a URL, the event types it wants (patterns such as `points.*`; none
-- means every public type) and the secret deliveries are signed with (Standard Webhooks).
-- During a rotation the previous secret signs too, until `previous_secret_until`.
CREATE TABLE webhooks (
    id                    uuid        PRIMARY KEY,
    url                   text        NOT NULL,
    description           text,
    event_types           text[]      NOT NULL DEFAULT '{}',
    secret                text        NOT NULL,
    previous_secret       text,
    previous_secret_until timestamptz,
    active                boolean     NOT NULL DEFAULT true,
    -- Why the server stopped delivering (`410`, failing too long); null when a user paused it.
    disabled_reason       text,
    -- Since when every attempt has failed (operational state: not versioned, not audited).
    failing_since         timestamptz,
    version               bigint      NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);
CREATE INDEX webhooks_live_idx ON webhooks (created_at, id) WHERE deleted_at IS NULL;

-- One event to one endpoint: its attempts, and when the next is due. A worker claims due
-- deliveries FOR UPDATE SKIP LOCKED and moves `next_attempt_at` past its own timeout (a
-- lease), so two workers never make the same attempt and a crashed one's work comes due again.
CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    webhook_id      uuid        NOT NULL REFERENCES webhooks (id),
    event_id        uuid        NOT NULL REFERENCES events (id),
    event_type      text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'delivered', 'failed')),
    -- Failed attempts since the first or the last redelivery: the retry schedule's step.
    retries         integer     NOT NULL DEFAULT 0,
    attempts        jsonb       NOT NULL DEFAULT '[]',
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id),
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
-- The delivery log, newest first (ids are UUID v7: time-ordered).
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_age_idx ON webhook_deliveries (created_at);

-- How far the outbox has been fanned out to subscriptions, in commit order (txid, seq). One
-- row, locked by the instance that fans out; the others skip it.
CREATE TABLE webhook_dispatch (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_txid bigint  NOT NULL,
    last_seq  bigint  NOT NULL
);
-- No subscription exists yet, so the walk starts after every event recorded so far.
INSERT INTO webhook_dispatch (last_txid, last_seq)
SELECT coalesce(max(txid), 0), coalesce(max(seq), 0) FROM events;
