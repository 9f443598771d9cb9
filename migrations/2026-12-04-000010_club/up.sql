-- The membership club (客户俱乐部): tiers, members, an append-only points ledger with lots,
-- earning rules, rewards with stock, club events with waitlists, and referrals.

-- The club's policies, one row: when earned points expire, the window tiers qualify in, how
-- long a waitlist offer holds, how early a coming downgrade is announced.
CREATE TABLE club_settings (
    id                     boolean     PRIMARY KEY DEFAULT true CHECK (id),
    expiry_policy          text        NOT NULL DEFAULT 'after_months',
    expiry_months          integer     NOT NULL DEFAULT 12 CHECK (expiry_months > 0),
    tier_window            text        NOT NULL DEFAULT 'rolling_year',
    offer_hold_hours       integer     NOT NULL DEFAULT 24 CHECK (offer_hold_hours > 0),
    downgrade_notice_days  integer     NOT NULL DEFAULT 14 CHECK (downgrade_notice_days >= 0),
    version                bigint      NOT NULL DEFAULT 1,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
INSERT INTO club_settings DEFAULT VALUES;

CREATE TABLE club_tiers (
    id                      uuid        PRIMARY KEY,
    name                    text        NOT NULL,
    -- 0 is the tier every member starts in; higher ranks are better.
    rank                    integer     NOT NULL CHECK (rank >= 0),
    qualification_metric    text        NOT NULL,
    qualification_threshold bigint      NOT NULL CHECK (qualification_threshold >= 0),
    discount_percent        integer     NOT NULL DEFAULT 0,
    multiplier_percent      integer     NOT NULL DEFAULT 100,
    priority_service        boolean     NOT NULL DEFAULT false,
    benefits                text[]      NOT NULL DEFAULT '{}',
    version                 bigint      NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz
);
CREATE UNIQUE INDEX club_tiers_rank_idx ON club_tiers (rank) WHERE deleted_at IS NULL;

CREATE SEQUENCE club_member_numbers START 100001;

-- Balances are not stored: they are derived from the lots (what remains of each earning) and
-- `owed` (the debt refunds left), which change only under this row's lock.
CREATE TABLE club_members (
    id                    uuid        PRIMARY KEY,
    customer_id           uuid        NOT NULL UNIQUE REFERENCES customers (id),
    member_number         text        NOT NULL UNIQUE,
    status                text        NOT NULL,
    joined_at             timestamptz NOT NULL,
    tier_id               uuid        REFERENCES club_tiers (id),
    tier_since            timestamptz,
    -- When the tier is next reviewed (the end of its qualification window): kept, or one down.
    tier_review_at        timestamptz,
    -- The review whose coming downgrade was announced (once per review).
    downgrade_noticed_for timestamptz,
    lifetime_earned       bigint      NOT NULL DEFAULT 0 CHECK (lifetime_earned >= 0),
    owed                  bigint      NOT NULL DEFAULT 0 CHECK (owed >= 0),
    version               bigint      NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX club_members_review_idx ON club_members (tier_review_at) WHERE tier_review_at IS NOT NULL;
CREATE INDEX club_members_created_idx ON club_members (created_at DESC, id DESC);

CREATE TABLE club_tier_changes (
    id          uuid        PRIMARY KEY,
    member_id   uuid        NOT NULL REFERENCES club_members (id),
    from_tier   uuid        REFERENCES club_tiers (id),
    to_tier     uuid        REFERENCES club_tiers (id),
    reason      text        NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX club_tier_changes_member_idx ON club_tier_changes (member_id, changed_at);

-- The ledger. Rows are never changed or removed (a trigger refuses it; only erasure may
-- blank a reason): the sum of `points` over a member's entries is what remains of their lots
-- minus what they owe.
CREATE TABLE points_entries (
    id            uuid        PRIMARY KEY,
    member_id     uuid        NOT NULL REFERENCES club_members (id),
    kind          text        NOT NULL,
    points        bigint      NOT NULL,
    -- What the entry adds to (or, reversed, takes from) the qualifying count for tiers.
    qualifying    bigint      NOT NULL DEFAULT 0,
    balance_after bigint      NOT NULL CHECK (balance_after >= 0),
    reason        text        NOT NULL,
    reference     text,
    order_id      uuid,
    rule_id       uuid,
    -- Debits: the lots they used, [{lot_id, points}]; earnings: the debt they paid first.
    lots          jsonb       NOT NULL DEFAULT '[]',
    debt_paid     bigint      NOT NULL DEFAULT 0,
    owed_added    bigint      NOT NULL DEFAULT 0,
    available_at  timestamptz,
    expires_at    timestamptz,
    actor_type    text        NOT NULL,
    actor_id      uuid,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX points_entries_reference_idx ON points_entries (member_id, kind, reference) WHERE reference IS NOT NULL;
CREATE INDEX points_entries_member_idx ON points_entries (member_id, created_at DESC, id DESC);
CREATE INDEX points_entries_order_idx ON points_entries (order_id) WHERE order_id IS NOT NULL;

CREATE FUNCTION points_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'points entries are append-only';
    END IF;
    IF (NEW.id, NEW.member_id, NEW.kind, NEW.points, NEW.qualifying, NEW.balance_after,
        NEW.reference, NEW.order_id, NEW.rule_id, NEW.lots, NEW.debt_paid, NEW.owed_added,
        NEW.available_at, NEW.expires_at, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.member_id, OLD.kind, OLD.points, OLD.qualifying, OLD.balance_after,
        OLD.reference, OLD.order_id, OLD.rule_id, OLD.lots, OLD.debt_paid, OLD.owed_added,
        OLD.available_at, OLD.expires_at, OLD.created_at) THEN
        RAISE EXCEPTION 'points entries are append-only (only erasure may blank a reason)';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER points_entries_append_only BEFORE UPDATE OR DELETE ON points_entries
    FOR EACH ROW EXECUTE FUNCTION points_entries_append_only();
CREATE TRIGGER points_entries_no_truncate BEFORE TRUNCATE ON points_entries
    FOR EACH STATEMENT EXECUTE FUNCTION points_entries_append_only();

-- What remains of each earning: spendable from `available_at` (pending before) until
-- `expires_at`. Debits take from `remaining`; the expiry job moves the rest to `expired`.
CREATE TABLE points_lots (
    id           uuid        PRIMARY KEY,
    member_id    uuid        NOT NULL REFERENCES club_members (id),
    entry_id     uuid        NOT NULL REFERENCES points_entries (id),
    order_id     uuid,
    points       bigint      NOT NULL CHECK (points > 0),
    remaining    bigint      NOT NULL CHECK (remaining >= 0),
    expired      bigint      NOT NULL DEFAULT 0 CHECK (expired >= 0),
    available_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    CHECK (remaining + expired <= points)
);
CREATE INDEX points_lots_member_idx ON points_lots (member_id, expires_at) WHERE remaining > 0;
CREATE INDEX points_lots_lapse_idx ON points_lots (expires_at) WHERE remaining > 0;
CREATE INDEX points_lots_entry_idx ON points_lots (entry_id);

CREATE TABLE club_rules (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL,
    kind            text        NOT NULL,
    active          boolean     NOT NULL DEFAULT true,
    points          bigint      NOT NULL DEFAULT 0,
    points_per_unit integer     NOT NULL DEFAULT 0,
    currency        text,
    every_nth       integer,
    within_days     integer,
    categories      text[]      NOT NULL DEFAULT '{}',
    min_categories  integer,
    cap_points      bigint,
    cap_period      text,
    pending_days    integer     NOT NULL DEFAULT 0,
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE club_rewards (
    id               uuid        PRIMARY KEY,
    name             text        NOT NULL,
    description      text,
    points_cost      bigint      NOT NULL CHECK (points_cost > 0),
    -- NULL: unlimited.
    stock            integer     CHECK (stock >= 0),
    per_member_limit integer,
    active           boolean     NOT NULL DEFAULT true,
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);

CREATE TABLE club_reward_redemptions (
    id         uuid        PRIMARY KEY,
    reward_id  uuid        NOT NULL REFERENCES club_rewards (id),
    member_id  uuid        NOT NULL REFERENCES club_members (id),
    entry_id   uuid        NOT NULL REFERENCES points_entries (id),
    points     bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX club_reward_redemptions_member_idx ON club_reward_redemptions (member_id, reward_id);

CREATE TABLE club_events (
    id                uuid        PRIMARY KEY,
    title             text        NOT NULL,
    kind              text        NOT NULL,
    description       text,
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL CHECK (ends_at > starts_at),
    place             text        NOT NULL,
    capacity          integer     NOT NULL CHECK (capacity > 0),
    -- Empty: every tier.
    tiers_invited     uuid[]      NOT NULL DEFAULT '{}',
    attendance_points bigint      NOT NULL DEFAULT 0,
    version           bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE INDEX club_events_starts_idx ON club_events (starts_at, id);

CREATE TABLE club_registrations (
    id               uuid        PRIMARY KEY,
    event_id         uuid        NOT NULL REFERENCES club_events (id),
    member_id        uuid        NOT NULL REFERENCES club_members (id),
    status           text        NOT NULL,
    -- Waitlist order: better tiers first, then first come.
    priority         integer     NOT NULL DEFAULT 0,
    offer_expires_at timestamptz,
    checked_in_at    timestamptz,
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- One live registration per member and event.
CREATE UNIQUE INDEX club_registrations_member_idx ON club_registrations (event_id, member_id)
    WHERE status IN ('registered', 'waitlisted', 'offered', 'attended');
CREATE INDEX club_registrations_waitlist_idx ON club_registrations (event_id, priority DESC, created_at, id)
    WHERE status = 'waitlisted';
CREATE INDEX club_registrations_offer_idx ON club_registrations (offer_expires_at) WHERE status = 'offered';

CREATE TABLE club_referrals (
    id                 uuid        PRIMARY KEY,
    referrer_member_id uuid        NOT NULL REFERENCES club_members (id),
    customer_id        uuid        NOT NULL UNIQUE REFERENCES customers (id),
    note               text,
    status             text        NOT NULL,
    rewarded_entry_id  uuid        REFERENCES points_entries (id),
    version            bigint      NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX club_referrals_referrer_idx ON club_referrals (referrer_member_id, created_at DESC);

-- A time-ordered UUID (version 7) for rows written by set-based SQL (the expiry job), like
-- those the server makes.
CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;
