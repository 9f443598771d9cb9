-- Read models: what a domain publishes for other domains to read in their own queries, so
-- that no domain names another's tables (docs/architecture.md, "Domain borders"). Plain
-- views: PostgreSQL inlines them, so a query through one plans as it would on the table.

-- The customers' card: who a customer is and how they are classified, for the due list,
-- the boards, the visit cadences and plans, and the club's greetings and birthday bonuses.
CREATE VIEW customer_cards AS
SELECT id, display_name, tier, level, owner_id, birthday, important_dates, merged_into, deleted_at
FROM customers;

-- The orders whose sales count (paid or fulfilled), for the club's tiers and earning rules.
CREATE VIEW paid_orders AS
SELECT id, customer_id, total_minor, ordered_at
FROM orders
WHERE status IN ('paid', 'fulfilled');
