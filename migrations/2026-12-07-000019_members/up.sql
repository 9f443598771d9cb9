-- Members (a customer through a shop's or brand's app, with a member token) act on their own
-- data: the audit log and the outbox name them as actors.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_type_check,
    ADD CONSTRAINT audit_log_actor_type_check CHECK (actor_type IN ('user', 'api_key', 'member', 'system'));
ALTER TABLE events DROP CONSTRAINT events_actor_type_check,
    ADD CONSTRAINT events_actor_type_check CHECK (actor_type IN ('user', 'api_key', 'member', 'system'));
