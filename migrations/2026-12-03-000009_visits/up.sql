-- Visits (客户拜访制度): the visit with its five elements, recurring plans, follow-up tasks,
-- revisit cadences per value tier, the due list they produce, and visit targets.

-- The zone a user's day is planned in: their boards are drawn in it.
ALTER TABLE users ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

-- A recurring plan: an RFC 5545 DTSTART;TZID + RRULE (+ EXDATE) whose occurrences become
-- planned visits over a rolling horizon (`materialised_until`).
CREATE TABLE visit_plans (
    id                 uuid        PRIMARY KEY,
    customer_id        uuid        NOT NULL REFERENCES customers (id),
    owner_id           uuid        NOT NULL REFERENCES users (id),
    recurrence         text        NOT NULL,
    duration_minutes   integer     NOT NULL CHECK (duration_minutes > 0),
    purpose            text        NOT NULL,
    method             text        NOT NULL,
    reason             text        NOT NULL,
    agenda             text,
    -- The series this one continues after a "this and following" split.
    split_from         uuid        REFERENCES visit_plans (id),
    materialised_until timestamptz,
    version            bigint      NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE INDEX visit_plans_horizon_idx ON visit_plans (materialised_until NULLS FIRST) WHERE deleted_at IS NULL;
CREATE INDEX visit_plans_customer_idx ON visit_plans (customer_id);

CREATE TABLE visits (
    id               uuid        PRIMARY KEY,
    customer_id      uuid        NOT NULL REFERENCES customers (id),
    owner_id         uuid        NOT NULL REFERENCES users (id),
    complaint_id     uuid        REFERENCES complaints (id),
    -- An occurrence of a plan keeps its identity (plan, original start) through edits.
    plan_id          uuid        REFERENCES visit_plans (id),
    occurrence_at    timestamptz,
    scheduled_start  timestamptz NOT NULL,
    scheduled_end    timestamptz NOT NULL CHECK (scheduled_end > scheduled_start),
    purpose          text        NOT NULL,
    method           text        NOT NULL,
    agenda           text,
    reason           text        NOT NULL,
    participants     uuid[]      NOT NULL DEFAULT '{}',
    contacts_met     text[]      NOT NULL DEFAULT '{}',
    location         text,
    latitude         double precision,
    longitude        double precision,
    status           text        NOT NULL,
    cancel_reason    text,
    cancel_note      text,
    outcome          text,
    next_steps       text,
    actual_start     timestamptz,
    actual_end       timestamptz,
    check_in         jsonb,
    check_out        jsonb,
    -- distance − accuracy ≤ radius at check-in; NULL when there was nothing to measure from.
    within_radius    boolean,
    late_sync        boolean     NOT NULL DEFAULT false,
    reschedule_count integer     NOT NULL DEFAULT 0,
    -- [{"old_start", "old_end", "new_start", "new_end", "by", "reason", "at"}, ...]
    schedule_history jsonb       NOT NULL DEFAULT '[]',
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (plan_id, occurrence_at)
);
CREATE INDEX visits_owner_idx ON visits (owner_id, scheduled_start, id);
CREATE INDEX visits_customer_idx ON visits (customer_id, scheduled_start);
CREATE INDEX visits_schedule_idx ON visits (scheduled_start, id);
-- The missed-visit job's walk.
CREATE INDEX visits_open_idx ON visits (scheduled_end) WHERE status IN ('planned', 'confirmed');
CREATE INDEX visits_complaint_idx ON visits (complaint_id) WHERE complaint_id IS NOT NULL;

-- Tasks agreed at a visit; a follow-up may plan the next visit or open a complaint.
CREATE TABLE visit_follow_ups (
    id            uuid        PRIMARY KEY,
    visit_id      uuid        NOT NULL REFERENCES visits (id),
    owner_id      uuid        NOT NULL REFERENCES users (id),
    customer_id   uuid        NOT NULL REFERENCES customers (id),
    title         text        NOT NULL,
    due_on        date,
    done_at       timestamptz,
    next_visit_id uuid        REFERENCES visits (id),
    complaint_id  uuid        REFERENCES complaints (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visit_follow_ups_visit_idx ON visit_follow_ups (visit_id);
CREATE INDEX visit_follow_ups_due_idx ON visit_follow_ups (owner_id, due_on) WHERE done_at IS NULL;
CREATE INDEX visit_follow_ups_customer_idx ON visit_follow_ups (customer_id);

-- How often each value tier is visited, with a tolerance and the check-in radius.
CREATE TABLE visit_cadences (
    tier           text        PRIMARY KEY,
    interval_days  integer     NOT NULL CHECK (interval_days > 0),
    tolerance_days integer     NOT NULL CHECK (tolerance_days >= 0),
    radius_m       integer     NOT NULL DEFAULT 200 CHECK (radius_m > 0),
    version        bigint      NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO visit_cadences (tier, interval_days, tolerance_days) VALUES
    ('key', 30, 3), ('major', 60, 6), ('ordinary', 90, 9), ('long_tail', 180, 18),
    ('unclassified', 90, 9);

-- One customer's own cadence, in place of their tier's.
CREATE TABLE visit_cadence_overrides (
    customer_id    uuid        PRIMARY KEY REFERENCES customers (id),
    interval_days  integer     NOT NULL CHECK (interval_days > 0),
    tolerance_days integer     NOT NULL CHECK (tolerance_days >= 0),
    version        bigint      NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- When each live customer is next due a visit: last completed visit + their cadence, or,
-- never visited, the day they became a customer (their first visit is owed from then). `planned` takes them off the due list.
-- Derived: `visit_due_refresh` rewrites rows, called by visits on every visit write and by
-- the triggers below when a customer's tier, owner or liveness changes.
CREATE TABLE visit_due (
    customer_id    uuid        PRIMARY KEY REFERENCES customers (id),
    owner_id       uuid,
    last_visit_at  timestamptz,
    due_at         timestamptz NOT NULL,
    tolerance_days integer     NOT NULL,
    planned        boolean     NOT NULL
);
CREATE INDEX visit_due_owner_idx ON visit_due (owner_id, due_at, customer_id) WHERE NOT planned;
CREATE INDEX visit_due_all_idx ON visit_due (due_at, customer_id) WHERE NOT planned;

CREATE FUNCTION visit_due_refresh(ids uuid[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM visit_due d USING customers c
     WHERE d.customer_id = ANY (ids) AND c.id = d.customer_id
       AND (c.deleted_at IS NOT NULL OR c.merged_into IS NOT NULL OR c.erased_at IS NOT NULL);
    INSERT INTO visit_due (customer_id, owner_id, last_visit_at, due_at, tolerance_days, planned)
    SELECT c.id, c.owner_id, v.last_at,
           CASE WHEN v.last_at IS NULL THEN c.created_at
                ELSE v.last_at + make_interval(days => COALESCE(o.interval_days, k.interval_days)) END,
           COALESCE(o.tolerance_days, k.tolerance_days),
           EXISTS (SELECT 1 FROM visits p WHERE p.customer_id = c.id
                      AND p.status IN ('planned', 'confirmed', 'checked_in'))
      FROM unnest(ids) AS i (id)
      JOIN customers c ON c.id = i.id
      JOIN visit_cadences k ON k.tier = COALESCE(c.tier, 'unclassified')
      LEFT JOIN visit_cadence_overrides o ON o.customer_id = c.id
      LEFT JOIN LATERAL (SELECT max(COALESCE(x.actual_end, x.scheduled_end)) AS last_at
                           FROM visits x WHERE x.customer_id = c.id AND x.status = 'completed') v ON true
     WHERE c.deleted_at IS NULL AND c.merged_into IS NULL AND c.erased_at IS NULL
    ON CONFLICT (customer_id) DO UPDATE SET
        owner_id = excluded.owner_id, last_visit_at = excluded.last_visit_at,
        due_at = excluded.due_at, tolerance_days = excluded.tolerance_days,
        planned = excluded.planned;
$$;

CREATE FUNCTION visit_due_customers_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM visit_due_refresh(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION visit_due_customers_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed uuid[] := ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE n.tier IS DISTINCT FROM o.tier OR n.owner_id IS DISTINCT FROM o.owner_id
            OR n.deleted_at IS DISTINCT FROM o.deleted_at OR n.merged_into IS DISTINCT FROM o.merged_into
            OR n.erased_at IS DISTINCT FROM o.erased_at);
BEGIN
    IF cardinality(changed) > 0 THEN
        PERFORM visit_due_refresh(changed);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER visit_due_customers_inserted AFTER INSERT ON customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION visit_due_customers_inserted();
CREATE TRIGGER visit_due_customers_updated AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION visit_due_customers_updated();

SELECT visit_due_refresh(ARRAY(SELECT id FROM customers));

-- The complaint deadlines on an assignee's visit board.
CREATE INDEX complaints_assignee_due_idx ON complaints (assignee_id, next_due_at) WHERE next_due_at IS NOT NULL;

-- How many visits a person (or, with no owner, everyone by default) should make per period,
-- in all and by method ("7 + 3": {"in_person": 7, "phone": 3}).
CREATE TABLE visit_targets (
    id         uuid        PRIMARY KEY,
    owner_id   uuid        REFERENCES users (id),
    period     text        NOT NULL,
    total      integer     NOT NULL CHECK (total >= 0),
    by_method  jsonb       NOT NULL DEFAULT '{}',
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (owner_id, period)
);
