//! Realistic generated data for demos and benchmarks, made by PostgreSQL itself
//! (`generate_series`) in batches on two connections, so a million customers take about a
//! minute. Seeded rows carry `source = 'seed'`; seeding again adds more after the last one.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{StreamExt, TryStreamExt};

use crate::db::Pool;

/// The `source` of every seeded customer and order.
pub const SEED_SOURCE: &str = "seed";

const FAMILY: &str = "ARRAY['Wang','Li','Zhang','Liu','Chen','Yang','Huang','Zhao','Wu','Zhou','Xu','Sun','Ma','Zhu','Hu',\
'Guo','He','Lin','Gao','Luo','Smith','Garcia','Muller','Rossi','Dubois','Kowalski','Novak','Silva','Kim','Tanaka']";
const GIVEN: &str = "ARRAY['Wei','Fang','Na','Min','Jing','Lei','Yan','Jun','Hui','Tao','Ling','Qiang','Xiu','Bo','Yu',\
'Anna','Ben','Clara','David','Elena','Farid','Grace','Hugo','Ines','Jonas','Kenji','Lucia','Marco','Nora','Omar']";
const COMPANIES: &str = "ARRAY[NULL,NULL,NULL,'Huaxin Trading','Dongfang Textiles','Jinmao Foods','Kaiyuan Tech',\
'Northwind Retail','Blue River Hotels','Summit Logistics','Lotus Pharmacy','Redwood Interiors']";
const REGIONS: &str = "ARRAY['north','south','east','west','central','north','east','south']";
/// An order's price and time, as functions of the customer's reference `t.ref`, creation
/// time `t.created` and the order number `n`; the customer figures use the same formulas.
const PRICE: &str = "(1000 + (abs(hashtext(t.ref || n)) % 200000))::bigint";
const ORDERED_AT: &str =
    "t.created + (now() - t.created) * ((abs(hashtext(t.ref || 'o' || n)) % 1000) / 1000.0)";
/// Identifiers in the UUID v7 layout whose time part grows with the seed index `i` from the
/// seed's start time `$4` (milliseconds), so primary-key inserts append instead of landing on
/// random index pages; the low bits make them unique (`n` is the order number).
const CUSTOMER_ID: &str =
    "lpad(to_hex($4::bigint + i), 12, '0') || '7000' || '8000' || lpad(to_hex(i), 12, '0')";
const ORDER_ID: &str = "lpad(to_hex($4::bigint + t.i), 12, '0') || '7000' || '80' || lpad(to_hex(n), 2, '0') \
                        || lpad(to_hex(t.i), 12, '0')";
/// The customer's search text, by the formula of the `customers_search_text` trigger (which
/// the batches skip, see [`SKIP_TRIGGERS`]); `seed_fills_customers_orders_and_figures` checks
/// that the two agree.
const SEARCH_TEXT: &str = "lower(concat_ws(' ', t.display_name, t.given, t.family, t.company, \
                           array_to_string(t.emails, ' '), array_to_string(t.phones, ' ')))";
/// Makes the rest of a batch's transaction skip triggers, when the role may: the search-text
/// trigger and the foreign-key checks on customers were a quarter of an insert's cost. The
/// batch writes the search text itself, leaves the customers' references empty, and the
/// foreign keys of orders and lines are suspended and validated at the end anyway. A role that
/// may not set `session_replication_role` (only superusers may, unless granted) seeds with
/// the triggers, to the same rows.
const SKIP_TRIGGERS: &str = "SELECT set_config('session_replication_role', 'replica', true) \
                             WHERE has_parameter_privilege('session_replication_role', 'SET')";
const TAGS: &str =
    "ARRAY['vip','newsletter','wholesale','online','store','referral','event','b2b']";

/// Every seeded customer's attributes (a shoe size and a channel), as an SQL array to pick from
/// by `i % 30`: shoe size `36 + i % 10` and channel `i % 3`. Picking one cost a fifth of
/// building it with `jsonb_build_object` on each row.
fn attribute_choices() -> String {
    let channels = ["web", "app", "store"];
    let choices: Vec<String> = (0..30)
        .map(|k| {
            format!(
                r#"'{{"shoe_size": {}, "channel": "{}"}}'"#,
                36 + k % 10,
                channels[k % 3]
            )
        })
        .collect();
    format!("ARRAY[{}]::jsonb[]", choices.join(","))
}

/// How much each seeded customer brings with them.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerCustomer {
    /// Paid, fulfilled or refunded orders.
    pub orders: i64,
    /// Complaints, most of them closed, with their two clocks.
    pub complaints: i64,
    /// Visits over the last three years, most completed; every fourth customer has one
    /// planned in the coming month.
    pub visits: i64,
    /// Earnings (each its lot) per club member; every second customer is a member when it is
    /// above 0.
    pub lots_per_member: i64,
}

/// The seeded agents who own the seeded customers (one per 2,000 at a million: a field
/// round) and are assigned their complaints (the first 50). They cannot sign in: their
/// password hash is not one.
pub const SEED_AGENTS: i64 = 500;

/// Inserts customers `first..first + count` (by seed index) with their orders (paid,
/// fulfilled or refunded) and figures, and their complaints. One call is one transaction.
/// Identifiers take their time part from `id_epoch_ms` plus the seed index.
async fn seed_batch(
    conn: &mut AsyncPgConnection,
    first: i64,
    count: i64,
    per: PerCustomer,
    id_epoch_ms: i64,
) -> QueryResult<()> {
    let attributes = attribute_choices();
    let customers = format!(
        "INSERT INTO customers (id, kind, display_name, given_name, family_name, company, phones, emails, gender, birthday,
             level, tier, lifecycle_stage, churn_reason, region, tags, attributes, source, external_ref, consents,
             order_count, total_spent_minor, first_purchase_at, last_purchase_at, currency, created_at, updated_at,
             search_text, owner_id)
         SELECT ({CUSTOMER_ID})::uuid,
                CASE WHEN t.company IS NOT NULL AND i % 7 = 0 THEN 'organization' ELSE 'person' END,
                t.display_name, t.given, t.family, t.company, t.phones, t.emails,
                (ARRAY['female','male','female','male','undisclosed'])[1 + i % 5],
                date '1950-01-01' + ((i * 37) % 20000)::int,
                CASE WHEN f.n > 0 AND t.level IN ('potential', 'prospect', 'registered') THEN 'active' ELSE t.level END,
                (ARRAY[NULL,'long_tail','long_tail','ordinary','ordinary','ordinary','major','key'])[1 + (i / 3) % 8],
                (ARRAY['exploration','formation','stability','stability','decline','churned'])[1 + (i / 5) % 6],
                CASE WHEN (i / 5) % 6 = 5
                     THEN (ARRAY['poor_service','lack_of_personalisation','better_product','price','other'])[1 + i % 5] END,
                ({REGIONS})[1 + i % 8],
                ARRAY[({TAGS})[1 + i % 8]] || CASE WHEN i % 3 = 0 THEN ARRAY[({TAGS})[1 + (i / 8) % 8]] ELSE '{{}}'::text[] END,
                ({attributes})[1 + i % 30],
                'seed', t.ref,
                jsonb_build_object('email', jsonb_build_object('granted', i % 2 = 0, 'updated_at', t.created)),
                f.n, f.total, f.first, f.last, CASE WHEN f.n > 0 THEN 'CNY' END, t.created, t.created,
                {SEARCH_TEXT}, ag.ids[1 + i % {SEED_AGENTS}]
         FROM (SELECT t.*, t.family || ' ' || t.given AS display_name,
                      ARRAY['+86' || (13000000000 + (i * 7919) % 999999999)::text] AS phones,
                      ARRAY[lower(t.given || '.' || t.family || i) || '@example.com'] AS emails
               FROM (SELECT i,
                      ({FAMILY})[1 + (i * 13) % 30] AS family,
                      ({GIVEN})[1 + (i * 17) % 30] AS given,
                      ({COMPANIES})[1 + (i * 5) % 12] AS company,
                      (ARRAY['potential','prospect','registered','registered','active','active','active','core'])[1 + i % 8] AS level,
                      'S' || lpad(i::text, 9, '0') AS ref,
                      now() - make_interval(secs => ((i * 104729) % 94608000)::double precision) AS created
               FROM generate_series($1::bigint, $2::bigint) AS i) AS t) AS t
         -- The figures of the orders inserted next (same formulas), so no second pass over customers.
         CROSS JOIN LATERAL (
             SELECT count(*) FILTER (WHERE o.counted)::int AS n,
                    coalesce(sum(o.price) FILTER (WHERE o.counted), 0)::bigint AS total,
                    min(o.at) FILTER (WHERE o.counted) AS first, max(o.at) FILTER (WHERE o.counted) AS last
             FROM (SELECT n % 10 <> 0 AS counted, {PRICE} AS price, {ORDERED_AT} AS at
                   FROM generate_series(1, $3::bigint) AS n) AS o) AS f
         -- The seeded agents, when seeded (complaints or visits): each customer gets an owner.
         CROSS JOIN (SELECT array_agg(id ORDER BY substring(email from '[0-9]+')::int) AS ids FROM users
                     WHERE email LIKE 'seed.agent.%@example.com') AS ag"
    );
    let orders = format!(
        "WITH o AS (
             INSERT INTO orders (id, source, external_id, customer_id, status, currency, subtotal_minor,
                 discount_minor, shipping_minor, total_minor, ordered_at, created_at, updated_at)
             SELECT ({ORDER_ID})::uuid, 'seed', t.ref || '-' || n, c.id,
                    CASE WHEN n % 10 = 0 THEN 'refunded' WHEN n % 4 = 0 THEN 'fulfilled' ELSE 'paid' END, 'CNY',
                    v.price, 0, 0, v.price, v.at, v.at, v.at
             FROM customers c
             CROSS JOIN LATERAL (SELECT c.external_ref AS ref, c.created_at AS created,
                                        substr(c.external_ref, 2)::bigint AS i) AS t
             CROSS JOIN generate_series(1, $3::bigint) AS n
             CROSS JOIN LATERAL (SELECT {PRICE} AS price, {ORDERED_AT} AS at) AS v
             WHERE c.source = 'seed' AND c.external_ref BETWEEN 'S' || lpad($1::text, 9, '0') AND 'S' || lpad($2::text, 9, '0')
             RETURNING id, external_id, total_minor)
         INSERT INTO order_lines (order_id, line_no, sku, name, category, spec, colour, quantity, unit_price_minor)
         SELECT o.id, 1, 'SKU-' || (abs(hashtext(o.external_id)) % 500), 'Product ' || (abs(hashtext(o.external_id)) % 500),
                (ARRAY['shoes','bags','apparel','accessories','home'])[1 + abs(hashtext(o.external_id)) % 5],
                (ARRAY['S','M','L','XL','EU 42'])[1 + abs(hashtext(o.id::text)) % 5],
                (ARRAY['black','brown','white','red','blue'])[1 + abs(hashtext(o.id::text || 'c')) % 5],
                1, o.total_minor
         FROM o"
    );
    let last = first + count - 1;
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        diesel::sql_query(SKIP_TRIGGERS).execute(conn).await?;
        for (statement, n) in [
            (&customers, per.orders),
            (&orders, per.orders),
            (&COMPLAINTS.to_owned(), per.complaints),
            (&VISITS.to_owned(), per.visits),
            (&MEMBERS.to_owned(), per.lots_per_member),
            // Triggers are off: the due list's rows are written here.
            (&DUE.to_owned(), 0),
        ] {
            diesel::sql_query(statement.as_str())
                .bind::<BigInt, _>(first)
                .bind::<BigInt, _>(last)
                .bind::<BigInt, _>(n)
                .bind::<BigInt, _>(id_epoch_ms)
                .execute(conn)
                .await?;
        }
        Ok(())
    })
    .await
}

/// `$3` complaints for each seeded customer of the batch `$1..=$2`, with their response and
/// resolution clocks: 85 % closed, the rest spread over the open statuses and due 8 hours
/// after they came in (so most open ones are overdue), assigned to one of the seeded agents.
const COMPLAINTS: &str = "
    WITH c AS (
        INSERT INTO complaints (id, customer_id, channel, category, severity, subject, description, assignee_id,
            status, customer_tier, customer_level, reopen_window_days, next_due_at, received_at, first_response_at,
            resolved_at, closed_at, created_at, updated_at)
        SELECT (lpad(to_hex($4::bigint + t.i), 12, '0') || '7000' || '90' || lpad(to_hex(n), 2, '0') || lpad(to_hex(t.i), 12, '0'))::uuid,
               cu.id,
               (ARRAY['phone','email','web','mobile_app','shop','in_person','mailbox','social'])[1 + abs(hashtext(cu.external_ref || n)) % 8],
               (ARRAY['product_quality','delivery','price','service','billing','other'])[1 + abs(hashtext(cu.external_ref || 'c' || n)) % 6],
               (ARRAY['low','medium','medium','high','critical'])[1 + abs(hashtext(cu.external_ref || 's' || n)) % 5],
               (ARRAY['Sole came off','Parcel arrived late','Charged twice','Rude staff','Wrong size sent','Price dropped after purchase'])[1 + abs(hashtext(cu.external_ref || 'j' || n)) % 6],
               'Seeded complaint ' || n || ' of customer ' || cu.external_ref,
               (SELECT id FROM users WHERE email = 'seed.agent.' || (1 + abs(hashtext(cu.external_ref || 'a' || n)) % 50) || '@example.com'),
               v.status, cu.tier, cu.level, 14,
               CASE WHEN v.status NOT IN ('closed', 'resolved') THEN v.at + interval '8 hours' END,
               v.at,
               CASE WHEN v.status <> 'new' THEN v.at + interval '2 hours' END,
               CASE WHEN v.status IN ('closed', 'resolved') THEN v.at + interval '2 days' END,
               CASE WHEN v.status = 'closed' THEN v.at + interval '3 days' END,
               v.at, v.at
        FROM customers cu
        CROSS JOIN LATERAL (SELECT substr(cu.external_ref, 2)::bigint AS i) AS t
        CROSS JOIN generate_series(1, $3::bigint) AS n
        CROSS JOIN LATERAL (SELECT
            cu.created_at + (now() - cu.created_at) * ((abs(hashtext(cu.external_ref || 't' || n)) % 1000) / 1000.0) AS at,
            (ARRAY['closed','closed','closed','closed','closed','closed','closed','closed','closed','closed',
                   'closed','closed','closed','closed','closed','closed','closed','resolved','in_progress','in_progress',
                   'acknowledged','awaiting_customer','new'])[1 + abs(hashtext(cu.external_ref || 'x' || n)) % 23] AS status) AS v
        WHERE $3 > 0 AND cu.source = 'seed' AND cu.external_ref BETWEEN 'S' || lpad($1::text, 9, '0') AND 'S' || lpad($2::text, 9, '0')
        RETURNING id, received_at, first_response_at, resolved_at, status)
    INSERT INTO complaint_clocks (complaint_id, metric, target_minutes, started_at, due_at, fulfilled_at, elapsed_seconds)
    SELECT c.id, m.metric, m.minutes, c.received_at, c.received_at + m.minutes * interval '1 minute', m.done,
           extract(epoch FROM m.done - c.received_at)::bigint
    FROM c CROSS JOIN LATERAL (VALUES ('first_response', 480, c.first_response_at), ('resolution', 2880, c.resolved_at))
        AS m(metric, minutes, done)";

/// `$3` visits for each seeded customer of the batch `$1..=$2`, by the customer's owner, spread
/// over the last three years at working hours: mostly completed (with their actual times,
/// nine in ten checked in within the radius), some cancelled or no-shows; the last visit of
/// every fourth customer is planned within the next 30 days instead.
const VISITS: &str = "
    INSERT INTO visits (id, customer_id, owner_id, scheduled_start, scheduled_end, purpose, method, reason, status,
        actual_start, actual_end, within_radius, cancel_reason, created_at, updated_at)
    SELECT (lpad(to_hex($4::bigint + t.i), 12, '0') || '7000' || 'a0' || lpad(to_hex(n), 2, '0') || lpad(to_hex(t.i), 12, '0'))::uuid,
           cu.id, cu.owner_id, v.at, v.at + interval '1 hour',
           (ARRAY['after_sales_follow_up','relationship_maintenance','sales','complaint_follow_up','greeting',
                  'satisfaction_survey','referral_request','event_invitation','other'])[1 + abs(hashtext(cu.external_ref || 'p' || n)) % 9],
           (ARRAY['in_person','in_person','in_person','phone','phone','video','message'])[1 + abs(hashtext(cu.external_ref || 'm' || n)) % 7],
           'Seeded visit ' || n, v.status,
           CASE WHEN v.status = 'completed' THEN v.at + interval '5 minutes' END,
           CASE WHEN v.status = 'completed' THEN v.at + interval '50 minutes' END,
           CASE WHEN v.status = 'completed' THEN abs(hashtext(cu.external_ref || 'r' || n)) % 10 <> 0 END,
           CASE WHEN v.status = 'cancelled' THEN 'customer_changed_plans' END,
           least(v.at, now()) - interval '7 days', least(v.at, now())
    FROM customers cu
    CROSS JOIN LATERAL (SELECT substr(cu.external_ref, 2)::bigint AS i) AS t
    CROSS JOIN generate_series(1, $3::bigint) AS n
    CROSS JOIN LATERAL (SELECT CASE
        WHEN n = $3 AND t.i % 4 = 0 THEN date_trunc('hour', now()) + (1 + t.i % 30) * interval '1 day' + (t.i % 8) * interval '1 hour'
        ELSE date_trunc('day', now()) - (1 + abs(hashtext(cu.external_ref || 'd' || n)) % 1095) * interval '1 day'
             + (1 + abs(hashtext(cu.external_ref || 'h' || n)) % 9) * interval '1 hour' END AS at) AS w
    CROSS JOIN LATERAL (SELECT w.at, CASE WHEN w.at > now() THEN 'planned' ELSE
        (ARRAY['completed','completed','completed','completed','completed','completed','completed','completed',
               'cancelled','no_show'])[1 + abs(hashtext(cu.external_ref || 's' || n)) % 10] END AS status) AS v
    WHERE $3 > 0 AND cu.owner_id IS NOT NULL AND cu.source = 'seed'
      AND cu.external_ref BETWEEN 'S' || lpad($1::text, 9, '0') AND 'S' || lpad($2::text, 9, '0')";

/// Every second seeded customer of the batch `$1..=$2` as an active club member since they
/// became a customer, with `$3` earnings of 100 points spread over their membership, each with
/// its lot lapsing twelve months after it was earned (so the older ones await the expiry job).
const MEMBERS: &str = "
    WITH m AS (
        INSERT INTO club_members (id, customer_id, member_number, status, joined_at, lifetime_earned, created_at, updated_at)
        SELECT (lpad(to_hex($4::bigint + t.i), 12, '0') || '7000' || 'b0' || '00' || lpad(to_hex(t.i), 12, '0'))::uuid,
               cu.id, 'S' || t.i, 'active', cu.created_at, 100 * $3, cu.created_at, cu.created_at
        FROM customers cu
        CROSS JOIN LATERAL (SELECT substr(cu.external_ref, 2)::bigint AS i) AS t
        WHERE $3 > 0 AND t.i % 2 = 0 AND cu.source = 'seed'
          AND cu.external_ref BETWEEN 'S' || lpad($1::text, 9, '0') AND 'S' || lpad($2::text, 9, '0')
        RETURNING id, joined_at, substr(member_number, 2)::bigint AS i),
    e AS (
        INSERT INTO points_entries (id, member_id, kind, points, qualifying, balance_after, reason, reference,
            available_at, expires_at, actor_type, created_at)
        SELECT (lpad(to_hex($4::bigint + m.i), 12, '0') || '7000' || 'b1' || lpad(to_hex(n), 2, '0') || lpad(to_hex(m.i), 12, '0'))::uuid,
               m.id, 'earn', 100, 100, 100 * n, 'Seeded earning ' || n, 'seed:' || n,
               v.at, v.at + interval '12 months', 'system', v.at
        FROM m CROSS JOIN generate_series(1, $3::bigint) AS n
        CROSS JOIN LATERAL (SELECT m.joined_at + (now() - m.joined_at) * (n::float / ($3 + 1)) AS at) AS v
        RETURNING id, member_id, points, available_at, expires_at)
    INSERT INTO points_lots (id, member_id, entry_id, points, remaining, available_at, expires_at)
    SELECT overlay(e.id::text PLACING 'b2' FROM 20 FOR 2)::uuid, e.member_id, e.id, e.points, e.points,
           e.available_at, e.expires_at
    FROM e";

/// The due-list rows of the batch's customers (`visit_due_refresh`, which the customers'
/// trigger would call).
const DUE: &str = "
    SELECT visit_due_refresh(ARRAY(SELECT id FROM customers WHERE source = 'seed'
        AND external_ref BETWEEN 'S' || lpad($1::text, 9, '0') AND 'S' || lpad($2::text, 9, '0')
        AND $3 = $3 AND $4 = $4))";

/// Connections the seed works on at once: one batch or one index build each.
pub const CONNECTIONS: usize = 2;

#[derive(QueryableByName)]
struct Index {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The seed index after the last seeded customer (earlier seeds may have left gaps).
async fn next_index(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    let next: Option<Index> = diesel::sql_query(
        "SELECT substr(external_ref, 2)::bigint + 1 AS n FROM customers
         WHERE source = 'seed' AND external_ref ~ '^S[0-9]{9}$' ORDER BY external_ref DESC LIMIT 1",
    )
    .get_result(conn)
    .await
    .optional()?;
    Ok(next.map_or(0, |i| i.n))
}

/// A secondary index or foreign key of a seeded table, as SQL that drops and recreates it.
#[derive(QueryableByName)]
struct Suspended {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    drop: String,
    #[diesel(sql_type = Text)]
    definition: String,
}

/// Drops the secondary indexes of the seeded tables and the foreign keys of orders and their
/// lines, recording each in `seed_suspended` in the same transaction. Primary keys and unique
/// constraints stay: the seed relies on them. (The customers' own foreign keys stay too:
/// seeded customers leave them empty, so they cost next to nothing.)
async fn suspend_indexes(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let suspended: Vec<Suspended> = diesel::sql_query(
            "SELECT c.conname AS name, format('ALTER TABLE %I DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS drop,
                    format('ALTER TABLE %I ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                           pg_get_constraintdef(c.oid)) AS definition
             FROM pg_constraint c
             WHERE c.contype = 'f' AND c.conrelid IN ('orders'::regclass, 'order_lines'::regclass,
                                                      'complaints'::regclass, 'complaint_clocks'::regclass)
             UNION ALL
             SELECT i.indexname, format('DROP INDEX %I', i.indexname), i.indexdef
             FROM pg_indexes i
             WHERE i.schemaname = current_schema() AND i.tablename IN ('customers', 'orders', 'order_lines')
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        )
        .load(conn)
        .await?;
        for item in &suspended {
            // The search text's GIN indexes (trigrams, digit grams) take longest to build, so
            // they start first; foreign keys would wait for the locks of index builds on the
            // tables they join, so they come last.
            diesel::sql_query(
                "INSERT INTO seed_suspended (name, definition, cost)
                 VALUES ($1, $2, CASE WHEN $2 LIKE '%USING gin (search%' THEN 2 WHEN $2 LIKE 'ALTER TABLE%' THEN 0 ELSE 1 END)",
            )
            .bind::<Text, _>(&item.name)
            .bind::<Text, _>(&item.definition)
            .execute(conn)
            .await?;
            diesel::sql_query(item.drop.as_str()).execute(conn).await?;
        }
        Ok(())
    })
    .await
}

/// The [`SEED_AGENTS`] agents who own seeded customers and their complaints, made once.
async fn seed_agents(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO users (id, email, password_hash, role)
         SELECT gen_random_uuid(), 'seed.agent.' || k || '@example.com', 'not a password hash', 'agent'
         FROM generate_series(1, $1::bigint) AS k
         ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(SEED_AGENTS)
    .execute(conn)
    .await
    .map(|_| ())
}

/// One unit of seeding work, run on one connection in one transaction.
enum Job {
    /// Customers `first..first + count` with their orders.
    Batch { first: i64, count: i64 },
    /// Recreates a suspended index or foreign key and forgets it.
    Rebuild(Pending),
    /// Vacuums a table and refreshes the planner's statistics: the vacuum marks the freshly
    /// loaded pages all-visible, so index-only scans (a searched page's walk) skip the table
    /// from the start instead of once autovacuum gets to it.
    Vacuum(&'static str),
}

/// A row of `seed_suspended`: what to rebuild.
#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    definition: String,
}

/// Seeds `customers` customers with `orders_per_customer` orders each.
///
/// Maintaining indexes and checking foreign keys row by row is what makes bulk loads slow,
/// so the secondary indexes and foreign keys of the seeded tables are dropped first, the
/// batches (each one transaction: its customers, their orders and figures) run on
/// [`CONNECTIONS`] connections, and then the indexes are rebuilt, also in parallel, longest
/// first. A seed that is interrupted keeps its finished batches; whatever it had not rebuilt
/// yet stays listed in `seed_suspended` and the next seed (even `--customers 0`) rebuilds it.
/// `progress` is told how many of how many steps are done.
pub async fn seed(
    pool: &Pool,
    customers: i64,
    per: PerCustomer,
    batch: i64,
    progress: impl Fn(u64, u64),
) -> Result<(), String> {
    let id_epoch_ms = chrono::Utc::now().timestamp_millis();
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let first = next_index(&mut conn).await.map_err(|e| e.to_string())?;
    if per.complaints > 0 || per.visits > 0 {
        seed_agents(&mut conn).await.map_err(|e| e.to_string())?;
    }
    suspend_indexes(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let pending: Vec<Pending> =
        diesel::sql_query("SELECT name, definition FROM seed_suspended ORDER BY cost DESC, name")
            .load(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    drop(conn);

    let batches = (0..customers)
        .step_by(batch.max(1) as usize)
        .map(|done| Job::Batch {
            first: first + done,
            count: batch.min(customers - done),
        });
    let rebuilds = pending.into_iter().map(Job::Rebuild);
    let vacuum = [
        "customers",
        "orders",
        "order_lines",
        "complaints",
        "complaint_clocks",
        "visits",
        "visit_due",
        "club_members",
        "points_entries",
        "points_lots",
    ]
    .map(Job::Vacuum);
    // Stages: every batch, then every rebuild, then vacuum; parallel within a stage.
    let stages: [Vec<Job>; 3] = [batches.collect(), rebuilds.collect(), vacuum.into()];
    let total = stages.iter().map(Vec::len).sum::<usize>() as u64;
    let mut done = 0;
    for stage in stages {
        futures_util::stream::iter(stage)
            .map(|job| run_job(pool, job, per, id_epoch_ms))
            .buffer_unordered(CONNECTIONS)
            .try_for_each(|()| {
                done += 1;
                progress(done, total);
                std::future::ready(Ok(()))
            })
            .await?;
    }
    Ok(())
}

async fn run_job(pool: &Pool, job: Job, per: PerCustomer, id_epoch_ms: i64) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let result = match job {
        Job::Batch { first, count } => seed_batch(&mut conn, first, count, per, id_epoch_ms).await,
        Job::Rebuild(Pending { name, definition }) => {
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                // The builds already run side by side, one per connection; parallel workers
                // on top would only fight them for the same cores.
                diesel::sql_query("SET LOCAL max_parallel_maintenance_workers = 0")
                    .execute(conn)
                    .await?;
                diesel::sql_query(definition.as_str()).execute(conn).await?;
                diesel::sql_query("DELETE FROM seed_suspended WHERE name = $1")
                    .bind::<Text, _>(&name)
                    .execute(conn)
                    .await
                    .map(|_| ())
            })
            .await
        }
        Job::Vacuum(table) => diesel::sql_query(format!("VACUUM (ANALYZE) {table}"))
            .execute(&mut conn)
            .await
            .map(|_| ()),
    };
    result.map_err(|e| e.to_string())
}
