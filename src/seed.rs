//! Realistic generated data for demos and benchmarks, made by PostgreSQL itself
//! (`generate_series`) in batches, so a million customers take about a minute.
//! Seeded rows carry `source = 'seed'`; seeding again adds more after the last one.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

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
const TAGS: &str =
    "ARRAY['vip','newsletter','wholesale','online','store','referral','event','b2b']";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many seeded customers exist (the next index to use).
pub async fn seeded_count(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    let count: Count =
        diesel::sql_query("SELECT count(*) AS n FROM customers WHERE source = 'seed'")
            .get_result(conn)
            .await?;
    Ok(count.n)
}

/// Inserts customers `first..first + count` (by seed index) with `orders_per_customer`
/// orders each (paid, fulfilled or refunded) and their figures. One call is one transaction.
pub async fn seed_batch(
    conn: &mut AsyncPgConnection,
    first: i64,
    count: i64,
    orders_per_customer: i64,
) -> QueryResult<()> {
    let customers = format!(
        "INSERT INTO customers (id, kind, display_name, given_name, family_name, company, phones, emails, gender, birthday,
             level, tier, lifecycle_stage, churn_reason, region, tags, attributes, source, external_ref, consents,
             order_count, total_spent_minor, first_purchase_at, last_purchase_at, currency, created_at, updated_at)
         SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
                    substring(int8send(floor(extract(epoch FROM t.created) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
                    52, 1), 53, 1), 'hex')::uuid,
                CASE WHEN t.company IS NOT NULL AND i % 7 = 0 THEN 'organization' ELSE 'person' END,
                t.family || ' ' || t.given, t.given, t.family, t.company,
                ARRAY['+86' || (13000000000 + (i * 7919) % 999999999)::text],
                ARRAY[lower(t.given || '.' || t.family || i) || '@example.com'],
                (ARRAY['female','male','female','male','undisclosed'])[1 + i % 5],
                date '1950-01-01' + ((i * 37) % 20000)::int,
                CASE WHEN f.n > 0 AND t.level IN ('potential', 'prospect', 'registered') THEN 'active' ELSE t.level END,
                (ARRAY[NULL,'long_tail','long_tail','ordinary','ordinary','ordinary','major','key'])[1 + (i / 3) % 8],
                (ARRAY['exploration','formation','stability','stability','decline','churned'])[1 + (i / 5) % 6],
                CASE WHEN (i / 5) % 6 = 5
                     THEN (ARRAY['poor_service','lack_of_personalisation','better_product','price','other'])[1 + i % 5] END,
                ({REGIONS})[1 + i % 8],
                ARRAY[({TAGS})[1 + i % 8]] || CASE WHEN i % 3 = 0 THEN ARRAY[({TAGS})[1 + (i / 8) % 8]] ELSE '{{}}'::text[] END,
                jsonb_build_object('shoe_size', 36 + i % 10, 'channel', (ARRAY['web','app','store'])[1 + i % 3]),
                'seed', t.ref,
                jsonb_build_object('email', jsonb_build_object('granted', i % 2 = 0, 'updated_at', t.created)),
                f.n, f.total, f.first, f.last, CASE WHEN f.n > 0 THEN 'CNY' END, t.created, t.created
         FROM (SELECT i,
                      ({FAMILY})[1 + (i * 13) % 30] AS family,
                      ({GIVEN})[1 + (i * 17) % 30] AS given,
                      ({COMPANIES})[1 + (i * 5) % 12] AS company,
                      (ARRAY['potential','prospect','registered','registered','active','active','active','core'])[1 + i % 8] AS level,
                      'S' || lpad(i::text, 9, '0') AS ref,
                      now() - make_interval(secs => ((i * 104729) % 94608000)::double precision) AS created
               FROM generate_series($1::bigint, $2::bigint) AS i) AS t
         -- The figures of the orders inserted next (same formulas), so no second pass over customers.
         CROSS JOIN LATERAL (
             SELECT count(*) FILTER (WHERE o.counted)::int AS n,
                    coalesce(sum(o.price) FILTER (WHERE o.counted), 0)::bigint AS total,
                    min(o.at) FILTER (WHERE o.counted) AS first, max(o.at) FILTER (WHERE o.counted) AS last
             FROM (SELECT n % 10 <> 0 AS counted, {PRICE} AS price, {ORDERED_AT} AS at
                   FROM generate_series(1, $3::bigint) AS n) AS o) AS f"
    );
    let orders = format!(
        "WITH o AS (
             INSERT INTO orders (id, source, external_id, customer_id, status, currency, subtotal_minor,
                 discount_minor, shipping_minor, total_minor, ordered_at, created_at, updated_at)
             SELECT gen_random_uuid(), 'seed', t.ref || '-' || n, c.id,
                    CASE WHEN n % 10 = 0 THEN 'refunded' WHEN n % 4 = 0 THEN 'fulfilled' ELSE 'paid' END, 'CNY',
                    {PRICE}, 0, 0, {PRICE}, {ORDERED_AT}, {ORDERED_AT}, {ORDERED_AT}
             FROM customers c
             CROSS JOIN LATERAL (SELECT c.external_ref AS ref, c.created_at AS created) AS t
             CROSS JOIN generate_series(1, $3::bigint) AS n
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
    use diesel_async::AsyncConnection;
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        for statement in [&customers, &orders] {
            diesel::sql_query(statement.as_str())
                .bind::<BigInt, _>(first)
                .bind::<BigInt, _>(last)
                .bind::<BigInt, _>(orders_per_customer)
                .execute(conn)
                .await?;
        }
        Ok(())
    })
    .await
}

#[derive(QueryableByName)]
struct IndexDefinition {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    definition: String,
}

/// Seeds `customers` customers with `orders_per_customer` orders each, in batches, inside one
/// transaction. Loading into indexed tables row by row is what makes bulk loads slow, so the
/// secondary indexes of the seeded tables are dropped first and built once at the end; being
/// one transaction, an interrupted seed leaves the database exactly as it was.
/// `progress` is told how many customers are done.
pub async fn seed(
    conn: &mut AsyncPgConnection,
    customers: i64,
    orders_per_customer: i64,
    batch: i64,
    mut progress: impl FnMut(i64) + Send,
) -> QueryResult<()> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let first = seeded_count(conn).await?;
        // Secondary indexes only: primary keys and unique constraints stay (the seed relies on them).
        let indexes: Vec<IndexDefinition> = diesel::sql_query(
            "SELECT i.indexname AS name, i.indexdef AS definition FROM pg_indexes i
             WHERE i.schemaname = current_schema() AND i.tablename IN ('customers', 'orders', 'order_lines')
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        )
        .load(conn)
        .await?;
        for index in &indexes {
            diesel::sql_query(format!("DROP INDEX \"{}\"", index.name.replace('"', "\"\""))).execute(conn).await?;
        }
        let mut done = 0;
        while done < customers {
            let count = batch.min(customers - done);
            seed_batch(conn, first + done, count, orders_per_customer).await?;
            done += count;
            progress(done);
        }
        for index in &indexes {
            diesel::sql_query(index.definition.as_str()).execute(conn).await?;
        }
        Ok(())
    })
    .await
}
