-- A fresh install's complaints have SLA clocks from the first one: default policies, one per
-- severity, so that together they match every complaint; no calendar (the clocks count
-- every minute). They sit last (position 1000 on), after any a manager adds, and are edited
-- or removed like any other. An install that already has policies keeps its own.
INSERT INTO complaint_sla_policies
    (id, name, position, severities, first_response_minutes, resolution_minutes)
SELECT id::uuid, name, position, severities::text[], first_response, resolution
FROM (VALUES
    ('0193a000-0000-7000-8000-000000000001', 'Default: critical', 1000, '{critical}', 60, 480),
    ('0193a000-0000-7000-8000-000000000002', 'Default: high', 1001, '{high}', 240, 1440),
    ('0193a000-0000-7000-8000-000000000003', 'Default: medium', 1002, '{medium}', 480, 4320),
    ('0193a000-0000-7000-8000-000000000004', 'Default: low', 1003, '{low}', 1440, 10080)
) AS defaults (id, name, position, severities, first_response, resolution)
WHERE NOT EXISTS (SELECT 1 FROM complaint_sla_policies);
