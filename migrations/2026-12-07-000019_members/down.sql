ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_type_check,
    ADD CONSTRAINT audit_log_actor_type_check CHECK (actor_type IN ('user', 'api_key', 'system'));
ALTER TABLE events DROP CONSTRAINT events_actor_type_check,
    ADD CONSTRAINT events_actor_type_check CHECK (actor_type IN ('user', 'api_key', 'system'));
