// @generated automatically by Diesel CLI.

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        name -> Text,
        prefix -> Text,
        key_hash -> Bytea,
        scopes -> Array<Text>,
        version -> Int8,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Uuid,
        entity_type -> Text,
        entity_id -> Uuid,
        customer_id -> Nullable<Uuid>,
        action -> Text,
        actor_type -> Text,
        actor_id -> Nullable<Uuid>,
        changes -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    customers (id) {
        id -> Uuid,
        kind -> Text,
        display_name -> Text,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        company -> Nullable<Text>,
        position -> Nullable<Text>,
        phones -> Array<Text>,
        emails -> Array<Text>,
        addresses -> Jsonb,
        gender -> Nullable<Text>,
        birthday -> Nullable<Date>,
        hobbies -> Array<Text>,
        personality -> Nullable<Text>,
        family_situation -> Nullable<Text>,
        occupation -> Nullable<Text>,
        income_band -> Nullable<Text>,
        likes -> Array<Text>,
        dislikes -> Array<Text>,
        important_dates -> Jsonb,
        notes -> Nullable<Text>,
        level -> Text,
        tier -> Nullable<Text>,
        lifecycle_stage -> Text,
        churn_reason -> Nullable<Text>,
        owner_id -> Nullable<Uuid>,
        region -> Nullable<Text>,
        tags -> Array<Text>,
        attributes -> Jsonb,
        referred_by -> Nullable<Uuid>,
        source -> Nullable<Text>,
        external_ref -> Nullable<Text>,
        consents -> Jsonb,
        currency -> Nullable<Text>,
        order_count -> Int4,
        total_spent_minor -> Int8,
        first_purchase_at -> Nullable<Timestamptz>,
        last_purchase_at -> Nullable<Timestamptz>,
        merged_into -> Nullable<Uuid>,
        erased_at -> Nullable<Timestamptz>,
        erased_by -> Nullable<Text>,
        deleted_at -> Nullable<Timestamptz>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    order_lines (order_id, line_no) {
        order_id -> Uuid,
        line_no -> Int4,
        sku -> Text,
        name -> Text,
        category -> Nullable<Text>,
        spec -> Nullable<Text>,
        colour -> Nullable<Text>,
        quantity -> Int4,
        unit_price_minor -> Int8,
    }
}

diesel::table! {
    orders (id) {
        id -> Uuid,
        source -> Text,
        external_id -> Text,
        customer_id -> Uuid,
        status -> Text,
        currency -> Text,
        subtotal_minor -> Int8,
        discount_minor -> Int8,
        shipping_minor -> Int8,
        total_minor -> Int8,
        ordered_at -> Timestamptz,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    events (id) {
        id -> Uuid,
        seq -> Int8,
        txid -> Int8,
        #[sql_name = "type"]
        event_type -> Text,
        occurred_at -> Timestamptz,
        subject_type -> Text,
        subject_id -> Uuid,
        customer_id -> Nullable<Uuid>,
        actor_type -> Text,
        actor_id -> Nullable<Uuid>,
        data -> Jsonb,
    }
}

diesel::table! {
    idempotency_keys (principal, key) {
        principal -> Text,
        key -> Text,
        request_hash -> Bytea,
        status -> Int2,
        headers -> Jsonb,
        body -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        family_id -> Uuid,
        user_id -> Uuid,
        token_hash -> Bytea,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        active -> Bool,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        password_changed_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(api_keys -> users (created_by));
diesel::joinable!(customers -> users (owner_id));
diesel::joinable!(order_lines -> orders (order_id));
diesel::joinable!(orders -> customers (customer_id));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    audit_log,
    customers,
    events,
    idempotency_keys,
    order_lines,
    orders,
    refresh_tokens,
    users,
);
