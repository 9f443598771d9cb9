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
        manager_id -> Nullable<Uuid>,
        time_zone -> Text,
        display_name -> Nullable<Text>,
    }
}

diesel::table! {
    business_calendars (id) {
        id -> Uuid,
        name -> Text,
        time_zone -> Text,
        hours -> Jsonb,
        holidays -> Array<Date>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    complaint_sla_policies (id) {
        id -> Uuid,
        name -> Text,
        position -> Int4,
        severities -> Array<Text>,
        tiers -> Array<Text>,
        levels -> Array<Text>,
        channels -> Array<Text>,
        first_response_minutes -> Int4,
        resolution_minutes -> Int4,
        calendar_id -> Nullable<Uuid>,
        reopen_window_days -> Int4,
        escalation -> Jsonb,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    answers (id) {
        id -> Uuid,
        question -> Text,
        answer -> Text,
        category -> Text,
        tags -> Array<Text>,
        use_count -> Int8,
        search -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    answer_uses (answer_id, used_at) {
        answer_id -> Uuid,
        used_at -> Timestamptz,
    }
}

diesel::table! {
    complaints (id) {
        id -> Uuid,
        customer_id -> Uuid,
        order_id -> Nullable<Uuid>,
        sku -> Nullable<Text>,
        channel -> Text,
        category -> Text,
        severity -> Text,
        subject -> Text,
        description -> Text,
        assignee_id -> Nullable<Uuid>,
        status -> Text,
        promised_by -> Nullable<Timestamptz>,
        reopen_count -> Int4,
        cycle -> Int4,
        customer_tier -> Nullable<Text>,
        customer_level -> Text,
        sla_policy_id -> Nullable<Uuid>,
        sla_policy_version -> Nullable<Int8>,
        escalation_base -> Int4,
        reopen_window_days -> Int4,
        next_due_at -> Nullable<Timestamptz>,
        received_at -> Timestamptz,
        first_response_at -> Nullable<Timestamptz>,
        resolved_at -> Nullable<Timestamptz>,
        closed_at -> Nullable<Timestamptz>,
        search -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    complaint_clocks (complaint_id, metric) {
        complaint_id -> Uuid,
        metric -> Text,
        target_minutes -> Nullable<Int4>,
        calendar_id -> Nullable<Uuid>,
        started_at -> Timestamptz,
        due_at -> Nullable<Timestamptz>,
        pauses -> Jsonb,
        paused_seconds -> Int8,
        fulfilled_at -> Nullable<Timestamptz>,
        elapsed_seconds -> Nullable<Int8>,
        breached_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    complaint_escalations (complaint_id, metric, step) {
        complaint_id -> Uuid,
        metric -> Text,
        step -> Int4,
        kind -> Text,
        level -> Int4,
        notify -> Jsonb,
        offset_minutes -> Int4,
        fire_at -> Timestamptz,
        fired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    complaint_comments (id) {
        id -> Uuid,
        complaint_id -> Uuid,
        visibility -> Text,
        author_type -> Text,
        author_id -> Nullable<Uuid>,
        body -> Text,
        answer_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    complaint_resolutions (complaint_id, cycle) {
        complaint_id -> Uuid,
        cycle -> Int4,
        #[sql_name = "type"]
        resolution_type -> Text,
        description -> Text,
        root_cause_category -> Text,
        root_cause -> Text,
        corrective_action -> Text,
        compensation_kind -> Nullable<Text>,
        compensation_points -> Nullable<Int4>,
        compensation_description -> Nullable<Text>,
        resolved_by_type -> Text,
        resolved_by_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    complaint_satisfaction (complaint_id, cycle) {
        complaint_id -> Uuid,
        cycle -> Int4,
        rating -> Int4,
        comment -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    visit_plans (id) {
        id -> Uuid,
        customer_id -> Uuid,
        owner_id -> Uuid,
        recurrence -> Text,
        duration_minutes -> Int4,
        purpose -> Text,
        method -> Text,
        reason -> Text,
        agenda -> Nullable<Text>,
        split_from -> Nullable<Uuid>,
        materialised_until -> Nullable<Timestamptz>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    visits (id) {
        id -> Uuid,
        customer_id -> Uuid,
        owner_id -> Uuid,
        complaint_id -> Nullable<Uuid>,
        plan_id -> Nullable<Uuid>,
        occurrence_at -> Nullable<Timestamptz>,
        scheduled_start -> Timestamptz,
        scheduled_end -> Timestamptz,
        purpose -> Text,
        method -> Text,
        agenda -> Nullable<Text>,
        reason -> Text,
        participants -> Array<Uuid>,
        contacts_met -> Array<Text>,
        location -> Nullable<Text>,
        latitude -> Nullable<Float8>,
        longitude -> Nullable<Float8>,
        status -> Text,
        cancel_reason -> Nullable<Text>,
        cancel_note -> Nullable<Text>,
        outcome -> Nullable<Text>,
        next_steps -> Nullable<Text>,
        actual_start -> Nullable<Timestamptz>,
        actual_end -> Nullable<Timestamptz>,
        check_in -> Nullable<Jsonb>,
        check_out -> Nullable<Jsonb>,
        within_radius -> Nullable<Bool>,
        late_sync -> Bool,
        reschedule_count -> Int4,
        schedule_history -> Jsonb,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        confirmed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    visit_follow_ups (id) {
        id -> Uuid,
        visit_id -> Uuid,
        owner_id -> Uuid,
        customer_id -> Uuid,
        title -> Text,
        due_on -> Nullable<Date>,
        done_at -> Nullable<Timestamptz>,
        next_visit_id -> Nullable<Uuid>,
        complaint_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    visit_cadences (tier) {
        tier -> Text,
        interval_days -> Int4,
        tolerance_days -> Int4,
        radius_m -> Int4,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    visit_cadence_overrides (customer_id) {
        customer_id -> Uuid,
        interval_days -> Int4,
        tolerance_days -> Int4,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    visit_due (customer_id) {
        customer_id -> Uuid,
        owner_id -> Nullable<Uuid>,
        last_visit_at -> Nullable<Timestamptz>,
        due_at -> Timestamptz,
        tolerance_days -> Int4,
        planned -> Bool,
    }
}

diesel::table! {
    visit_targets (id) {
        id -> Uuid,
        owner_id -> Nullable<Uuid>,
        period -> Text,
        total -> Int4,
        by_method -> Jsonb,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    club_settings (id) {
        id -> Bool,
        expiry_policy -> Text,
        expiry_months -> Int4,
        tier_window -> Text,
        offer_hold_hours -> Int4,
        downgrade_notice_days -> Int4,
        version -> Int8,
        updated_at -> Timestamptz,
        goodwill_points_per_complaint -> Int4,
    }
}

diesel::table! {
    club_tiers (id) {
        id -> Uuid,
        name -> Text,
        rank -> Int4,
        qualification_metric -> Text,
        qualification_threshold -> Int8,
        discount_percent -> Int4,
        multiplier_percent -> Int4,
        priority_service -> Bool,
        benefits -> Array<Text>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    club_members (id) {
        id -> Uuid,
        customer_id -> Uuid,
        member_number -> Text,
        status -> Text,
        joined_at -> Timestamptz,
        tier_id -> Nullable<Uuid>,
        tier_since -> Nullable<Timestamptz>,
        tier_review_at -> Nullable<Timestamptz>,
        downgrade_noticed_for -> Nullable<Timestamptz>,
        lifetime_earned -> Int8,
        owed -> Int8,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    club_tier_changes (id) {
        id -> Uuid,
        member_id -> Uuid,
        from_tier -> Nullable<Uuid>,
        to_tier -> Nullable<Uuid>,
        reason -> Text,
        changed_at -> Timestamptz,
    }
}

diesel::table! {
    points_entries (id) {
        id -> Uuid,
        member_id -> Uuid,
        kind -> Text,
        points -> Int8,
        qualifying -> Int8,
        balance_after -> Int8,
        reason -> Text,
        reference -> Nullable<Text>,
        order_id -> Nullable<Uuid>,
        rule_id -> Nullable<Uuid>,
        lots -> Jsonb,
        debt_paid -> Int8,
        owed_added -> Int8,
        available_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        actor_type -> Text,
        actor_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    points_lots (id) {
        id -> Uuid,
        member_id -> Uuid,
        entry_id -> Uuid,
        order_id -> Nullable<Uuid>,
        points -> Int8,
        remaining -> Int8,
        expired -> Int8,
        available_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    club_rules (id) {
        id -> Uuid,
        name -> Text,
        kind -> Text,
        active -> Bool,
        points -> Int8,
        points_per_unit -> Int4,
        currency -> Nullable<Text>,
        every_nth -> Nullable<Int4>,
        within_days -> Nullable<Int4>,
        categories -> Array<Text>,
        min_categories -> Nullable<Int4>,
        cap_points -> Nullable<Int8>,
        cap_period -> Nullable<Text>,
        pending_days -> Int4,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    club_rewards (id) {
        id -> Uuid,
        name -> Text,
        description -> Nullable<Text>,
        points_cost -> Int8,
        stock -> Nullable<Int4>,
        per_member_limit -> Nullable<Int4>,
        active -> Bool,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    club_reward_redemptions (id) {
        id -> Uuid,
        reward_id -> Uuid,
        member_id -> Uuid,
        entry_id -> Uuid,
        points -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    club_events (id) {
        id -> Uuid,
        title -> Text,
        kind -> Text,
        description -> Nullable<Text>,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        place -> Text,
        capacity -> Int4,
        tiers_invited -> Array<Uuid>,
        attendance_points -> Int8,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    club_registrations (id) {
        id -> Uuid,
        event_id -> Uuid,
        member_id -> Uuid,
        status -> Text,
        priority -> Int4,
        offer_expires_at -> Nullable<Timestamptz>,
        checked_in_at -> Nullable<Timestamptz>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    club_referrals (id) {
        id -> Uuid,
        referrer_member_id -> Uuid,
        customer_id -> Uuid,
        note -> Nullable<Text>,
        status -> Text,
        rewarded_entry_id -> Nullable<Uuid>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> users (created_by));
diesel::joinable!(customers -> users (owner_id));
diesel::joinable!(order_lines -> orders (order_id));
diesel::joinable!(orders -> customers (customer_id));
diesel::table! {
    webhooks (id) {
        id -> Uuid,
        url -> Text,
        description -> Nullable<Text>,
        event_types -> Array<Text>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamptz>,
        active -> Bool,
        disabled_reason -> Nullable<Text>,
        failing_since -> Nullable<Timestamptz>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        webhook_id -> Uuid,
        event_id -> Uuid,
        event_type -> Text,
        status -> Text,
        retries -> Int4,
        attempts -> Jsonb,
        next_attempt_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_dispatch (singleton) {
        singleton -> Bool,
        last_txid -> Int8,
        last_seq -> Int8,
    }
}

diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(complaints -> customers (customer_id));
diesel::joinable!(complaint_clocks -> complaints (complaint_id));
diesel::joinable!(complaint_comments -> complaints (complaint_id));
diesel::joinable!(complaint_resolutions -> complaints (complaint_id));
diesel::joinable!(complaint_satisfaction -> complaints (complaint_id));
diesel::joinable!(answer_uses -> answers (answer_id));
diesel::joinable!(visits -> customers (customer_id));
diesel::joinable!(visit_follow_ups -> visits (visit_id));
diesel::joinable!(visit_due -> customers (customer_id));

diesel::joinable!(club_members -> customers (customer_id));
diesel::joinable!(club_members -> club_tiers (tier_id));
diesel::joinable!(points_entries -> club_members (member_id));
diesel::joinable!(points_lots -> club_members (member_id));
diesel::joinable!(club_registrations -> club_events (event_id));
diesel::joinable!(club_registrations -> club_members (member_id));
diesel::joinable!(club_reward_redemptions -> club_rewards (reward_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(webhook_deliveries -> events (event_id));

diesel::allow_tables_to_appear_in_same_query!(
    answer_uses,
    answers,
    api_keys,
    business_calendars,
    club_events,
    club_members,
    club_referrals,
    club_registrations,
    club_reward_redemptions,
    club_rewards,
    club_rules,
    club_settings,
    club_tier_changes,
    club_tiers,
    complaint_clocks,
    complaint_comments,
    complaint_escalations,
    complaint_resolutions,
    complaint_satisfaction,
    complaint_sla_policies,
    complaints,
    audit_log,
    customers,
    events,
    idempotency_keys,
    order_lines,
    orders,
    points_entries,
    points_lots,
    refresh_tokens,
    users,
    visit_cadence_overrides,
    visit_cadences,
    visit_due,
    visit_follow_ups,
    visit_plans,
    visit_targets,
    visits,
    webhook_deliveries,
    webhook_dispatch,
    webhooks,
);
