-- The customer file, the transaction file (orders) and the audit log.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE customers (
    id                uuid PRIMARY KEY,
    kind              text        NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'organization')),
    display_name      text        NOT NULL,
    given_name        text,
    family_name       text,
    company           text,
    position          text,
    phones            text[]      NOT NULL DEFAULT '{}',
    emails            text[]      NOT NULL DEFAULT '{}',
    addresses         jsonb       NOT NULL DEFAULT '[]',
    gender            text        CHECK (gender IN ('female', 'male', 'other', 'undisclosed')),
    birthday          date,
    hobbies           text[]      NOT NULL DEFAULT '{}',
    personality       text,
    family_situation  text,
    occupation        text,
    income_band       text        CHECK (income_band IN ('low', 'lower_middle', 'middle', 'upper_middle', 'high')),
    likes             text[]      NOT NULL DEFAULT '{}',
    dislikes          text[]      NOT NULL DEFAULT '{}',
    important_dates   jsonb       NOT NULL DEFAULT '[]',
    notes             text,
    level             text        NOT NULL DEFAULT 'registered'
                      CHECK (level IN ('potential', 'prospect', 'registered', 'active', 'core')),
    tier              text        CHECK (tier IN ('key', 'major', 'ordinary', 'long_tail')),
    lifecycle_stage   text        NOT NULL DEFAULT 'exploration'
                      CHECK (lifecycle_stage IN ('exploration', 'formation', 'stability', 'decline', 'churned')),
    churn_reason      text        CHECK (churn_reason IN ('poor_service', 'lack_of_personalisation', 'better_product', 'price', 'other')),
    owner_id          uuid        REFERENCES users (id),
    region            text,
    tags              text[]      NOT NULL DEFAULT '{}',
    attributes        jsonb       NOT NULL DEFAULT '{}',
    referred_by       uuid        REFERENCES customers (id),
    source            text,
    external_ref      text,
    consents          jsonb       NOT NULL DEFAULT '{}',
    currency          text,
    order_count       integer     NOT NULL DEFAULT 0,
    total_spent_minor bigint      NOT NULL DEFAULT 0,
    first_purchase_at timestamptz,
    last_purchase_at  timestamptz,
    merged_into       uuid        REFERENCES customers (id),
    erased_at         timestamptz,
    erased_by         text,
    deleted_at        timestamptz,
    search_text       text        NOT NULL DEFAULT '',
    version           bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_churn_reason_only_when_churned
        CHECK ((lifecycle_stage = 'churned') = (churn_reason IS NOT NULL)),
    CONSTRAINT customers_source_ref_key UNIQUE (source, external_ref)
);

-- Free-text search over name, company, e-mails and phones, kept by a trigger so that every
-- writer (API, CSV import, seeding) maintains it.
CREATE FUNCTION customers_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_text := lower(concat_ws(' ', NEW.display_name, NEW.given_name, NEW.family_name, NEW.company,
                                       array_to_string(NEW.emails, ' '), array_to_string(NEW.phones, ' ')));
    RETURN NEW;
END $$;
CREATE TRIGGER customers_search_text BEFORE INSERT OR UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION customers_search_text();

-- Lists show live customers only; every index that serves a list is partial on that.
CREATE INDEX customers_created_idx ON customers (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_updated_idx ON customers (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_name_idx ON customers (display_name, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_total_spent_idx ON customers (total_spent_minor, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_last_purchase_idx ON customers ((coalesce(last_purchase_at, to_timestamp(0))), id)
    WHERE deleted_at IS NULL;
CREATE INDEX customers_search_idx ON customers USING gin (search_text gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX customers_level_idx ON customers (level, created_at) WHERE deleted_at IS NULL;
CREATE INDEX customers_tier_idx ON customers (tier, created_at) WHERE deleted_at IS NULL;
CREATE INDEX customers_stage_idx ON customers (lifecycle_stage, created_at) WHERE deleted_at IS NULL;
CREATE INDEX customers_owner_idx ON customers (owner_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX customers_region_idx ON customers (region, created_at) WHERE deleted_at IS NULL;
CREATE INDEX customers_birthday_month_idx ON customers ((extract(month FROM birthday)), created_at)
    WHERE deleted_at IS NULL;
CREATE INDEX customers_tags_idx ON customers USING gin (tags) WHERE deleted_at IS NULL;
CREATE INDEX customers_attributes_idx ON customers USING gin (attributes jsonb_path_ops) WHERE deleted_at IS NULL;
CREATE INDEX customers_referred_by_idx ON customers (referred_by) WHERE referred_by IS NOT NULL;

CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    source           text        NOT NULL,
    external_id      text        NOT NULL,
    customer_id      uuid        NOT NULL REFERENCES customers (id),
    status           text        NOT NULL CHECK (status IN ('placed', 'paid', 'fulfilled', 'cancelled', 'refunded')),
    currency         text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    subtotal_minor   bigint      NOT NULL CHECK (subtotal_minor >= 0),
    discount_minor   bigint      NOT NULL DEFAULT 0 CHECK (discount_minor >= 0),
    shipping_minor   bigint      NOT NULL DEFAULT 0 CHECK (shipping_minor >= 0),
    total_minor      bigint      NOT NULL CHECK (total_minor >= 0),
    ordered_at       timestamptz NOT NULL,
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_source_external_key UNIQUE (source, external_id)
);
CREATE INDEX orders_customer_idx ON orders (customer_id, ordered_at, id);
CREATE INDEX orders_ordered_idx ON orders (ordered_at, id);
CREATE INDEX orders_status_idx ON orders (status, ordered_at);

CREATE TABLE order_lines (
    order_id         uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no          integer NOT NULL,
    sku              text    NOT NULL,
    name             text    NOT NULL,
    category         text,
    spec             text,
    colour           text,
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint  NOT NULL CHECK (unit_price_minor >= 0),
    PRIMARY KEY (order_id, line_no)
);

-- Who changed what, when: written in the same transaction as the change itself.
CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    entity_type text        NOT NULL,
    entity_id   uuid        NOT NULL,
    customer_id uuid,
    action      text        NOT NULL,
    actor_type  text        NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
    actor_id    uuid,
    changes     jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id, created_at, id);
CREATE INDEX audit_log_customer_idx ON audit_log (customer_id, created_at, id) WHERE customer_id IS NOT NULL;
