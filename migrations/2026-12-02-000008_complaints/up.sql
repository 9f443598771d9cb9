-- Complaints (客户投诉制度): the complaint, its SLA clocks on business calendars, the
-- escalation ladder's scheduled steps, comments, resolutions with compensation, satisfaction
-- per resolution cycle, and the standard-answer library.

-- Who a user reports to: the escalation ladder's "the assignee's manager".
ALTER TABLE users ADD COLUMN manager_id uuid REFERENCES users (id);

-- Working hours in an IANA time zone: several intervals per weekday (a lunch break is two),
-- and holiday dates on which no interval counts.
CREATE TABLE business_calendars (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    time_zone  text        NOT NULL,
    -- [{"day": "monday", "start": "09:00", "end": "12:00"}, ...]
    hours      jsonb       NOT NULL,
    holidays   date[]      NOT NULL DEFAULT '{}',
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);

-- SLA policies in `position` order: the first whose conditions all hold applies (an empty
-- condition matches anything).
CREATE TABLE complaint_sla_policies (
    id                      uuid        PRIMARY KEY,
    name                    text        NOT NULL,
    position                integer     NOT NULL,
    severities              text[]      NOT NULL DEFAULT '{}',
    tiers                   text[]      NOT NULL DEFAULT '{}',
    levels                  text[]      NOT NULL DEFAULT '{}',
    channels                text[]      NOT NULL DEFAULT '{}',
    first_response_minutes  integer     NOT NULL CHECK (first_response_minutes > 0),
    resolution_minutes      integer     NOT NULL CHECK (resolution_minutes > 0),
    calendar_id             uuid        REFERENCES business_calendars (id),
    reopen_window_days      integer     NOT NULL DEFAULT 14 CHECK (reopen_window_days >= 0),
    -- [{"metric": "resolution", "offset_minutes": -60, "notify": {"kind": "assignee"}}, ...]
    escalation              jsonb       NOT NULL DEFAULT '[]',
    version                 bigint      NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz
);
CREATE INDEX complaint_sla_policies_order_idx ON complaint_sla_policies (position, id) WHERE deleted_at IS NULL;

CREATE TABLE answers (
    id         uuid        PRIMARY KEY,
    question   text        NOT NULL,
    answer     text        NOT NULL,
    category   text        NOT NULL,
    tags       text[]      NOT NULL DEFAULT '{}',
    use_count  bigint      NOT NULL DEFAULT 0,
    search     text        GENERATED ALWAYS AS (lower(question || ' ' || answer)) STORED,
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX answers_search_idx ON answers USING gin (search gin_trgm_ops);
-- Each citation of an answer, for its use counts over 7 and 30 days.
CREATE TABLE answer_uses (
    answer_id uuid        NOT NULL REFERENCES answers (id),
    used_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX answer_uses_idx ON answer_uses (answer_id, used_at);

CREATE TABLE complaints (
    id                   uuid        PRIMARY KEY,
    customer_id          uuid        NOT NULL REFERENCES customers (id),
    order_id             uuid        REFERENCES orders (id),
    sku                  text,
    channel              text        NOT NULL CHECK (channel IN ('phone', 'email', 'web', 'mobile_app', 'shop', 'in_person', 'mailbox', 'social')),
    category             text        NOT NULL CHECK (category IN ('product_quality', 'delivery', 'price', 'service', 'billing', 'other')),
    severity             text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    subject              text        NOT NULL,
    description          text        NOT NULL,
    assignee_id          uuid        REFERENCES users (id),
    status               text        NOT NULL DEFAULT 'new'
                         CHECK (status IN ('new', 'acknowledged', 'in_progress', 'awaiting_customer', 'resolved', 'closed', 'reopened')),
    promised_by          timestamptz,
    reopen_count         integer     NOT NULL DEFAULT 0,
    -- The resolution cycle: 1, and one more at each reopen (one rating per cycle).
    cycle                integer     NOT NULL DEFAULT 1,
    -- The customer's place when the complaint came in, which the SLA policy matched on.
    customer_tier        text,
    customer_level       text        NOT NULL,
    sla_policy_id        uuid        REFERENCES complaint_sla_policies (id),
    sla_policy_version   bigint,
    -- 1 when the complaint starts one level up the escalation ladder (key or core customer,
    -- or critical severity), else 0.
    escalation_base      integer     NOT NULL DEFAULT 0,
    reopen_window_days   integer     NOT NULL DEFAULT 14,
    -- The earliest due time of a running clock, kept by the write path: `overdue=true` is
    -- `next_due_at < now()`.
    next_due_at          timestamptz,
    received_at          timestamptz NOT NULL,
    first_response_at    timestamptz,
    resolved_at          timestamptz,
    closed_at            timestamptz,
    search               text        GENERATED ALWAYS AS (lower(subject || ' ' || description)) STORED,
    version              bigint      NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- Lists run newest first; each filter the work queues use has its own index.
CREATE INDEX complaints_created_idx ON complaints (created_at DESC, id DESC);
CREATE INDEX complaints_status_assignee_idx ON complaints (status, assignee_id, created_at DESC, id DESC);
CREATE INDEX complaints_assignee_idx ON complaints (assignee_id, created_at DESC, id DESC);
CREATE INDEX complaints_customer_idx ON complaints (customer_id, created_at DESC, id DESC);
-- Only running clocks have a due time: this index holds the open complaints alone.
CREATE INDEX complaints_running_idx ON complaints (created_at DESC, id DESC) INCLUDE (next_due_at) WHERE next_due_at IS NOT NULL;
CREATE INDEX complaints_search_idx ON complaints USING gin (search gin_trgm_ops);
CREATE INDEX complaints_order_idx ON complaints (order_id) WHERE order_id IS NOT NULL;

-- One clock per metric (first_response, resolution, promise): its target, due time, pauses,
-- fulfilment and breach.
CREATE TABLE complaint_clocks (
    complaint_id     uuid        NOT NULL REFERENCES complaints (id),
    metric           text        NOT NULL CHECK (metric IN ('first_response', 'resolution', 'promise')),
    target_minutes   integer,
    calendar_id      uuid        REFERENCES business_calendars (id),
    started_at       timestamptz NOT NULL,
    due_at           timestamptz,
    -- [{"from": ..., "to": ...}]; the last one has no `to` while the clock is paused.
    pauses           jsonb       NOT NULL DEFAULT '[]',
    paused_seconds   bigint      NOT NULL DEFAULT 0,
    fulfilled_at     timestamptz,
    -- Business seconds from start to fulfilment, pauses left out (reports).
    elapsed_seconds  bigint,
    breached_at      timestamptz,
    PRIMARY KEY (complaint_id, metric)
);

-- The escalation ladder's steps, scheduled from each due time; the job fires each once.
CREATE TABLE complaint_escalations (
    complaint_id uuid        NOT NULL REFERENCES complaints (id),
    metric       text        NOT NULL,
    step         integer     NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('warning', 'breach', 'escalation')),
    level        integer     NOT NULL,
    notify       jsonb       NOT NULL,
    -- From the clock's due time; the step fires at due_at + offset while the clock runs, and
    -- waits at 'infinity' while it is paused or fulfilled before the step's time.
    offset_minutes integer   NOT NULL,
    fire_at      timestamptz NOT NULL,
    fired_at     timestamptz,
    PRIMARY KEY (complaint_id, metric, step)
);
CREATE INDEX complaint_escalations_due_idx ON complaint_escalations (fire_at) WHERE fired_at IS NULL;

CREATE TABLE complaint_comments (
    id           uuid        PRIMARY KEY,
    complaint_id uuid        NOT NULL REFERENCES complaints (id),
    visibility   text        NOT NULL CHECK (visibility IN ('internal', 'public')),
    author_type  text        NOT NULL,
    author_id    uuid,
    body         text        NOT NULL,
    answer_id    uuid        REFERENCES answers (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX complaint_comments_idx ON complaint_comments (complaint_id, created_at, id);

-- One resolution per cycle, with its compensation (a goodwill gift or a points credit).
CREATE TABLE complaint_resolutions (
    complaint_id             uuid        NOT NULL REFERENCES complaints (id),
    cycle                    integer     NOT NULL,
    type                     text        NOT NULL CHECK (type IN ('repair', 'replace', 'refund', 'return', 'explanation', 'compensation', 'none')),
    description              text        NOT NULL,
    root_cause_category      text        NOT NULL,
    root_cause               text        NOT NULL,
    corrective_action        text        NOT NULL,
    compensation_kind        text        CHECK (compensation_kind IN ('points', 'gift')),
    compensation_points      integer,
    compensation_description text,
    resolved_by_type         text        NOT NULL,
    resolved_by_id           uuid,
    created_at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (complaint_id, cycle)
);

CREATE TABLE complaint_satisfaction (
    complaint_id uuid        NOT NULL REFERENCES complaints (id),
    cycle        integer     NOT NULL,
    rating       integer     NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment      text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (complaint_id, cycle)
);
