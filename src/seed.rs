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
/// paid orders each, and sets their figures. One call is one transaction.
pub async fn seed_batch(
    conn: &mut AsyncPgConnection,
    first: i64,
    count: i64,
    orders_per_customer: i64,
) -> QueryResult<()> {
    let customers = format!(
        "INSERT INTO customers (id, kind, display_name, given_name, family_name, company, phones, emails, gender, birthday,
             level, tier, lifecycle_stage, churn_reason, region, tags, attributes, source, external_ref, consents,
             created_at, updated_at)
         SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
                    substring(int8send(floor(extract(epoch FROM t.created) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
                    52, 1), 53, 1), 'hex')::uuid,
                CASE WHEN t.company IS NOT NULL AND i % 7 = 0 THEN 'organization' ELSE 'person' END,
                t.family || ' ' || t.given, t.given, t.family, t.company,
                ARRAY['+86' || (13000000000 + (i * 7919) % 999999999)::text],
                ARRAY[lower(t.given || '.' || t.family || i) || '@example.com'],
                (ARRAY['female','male','female','male','undisclosed'])[1 + i % 5],
                date '1950-01-01' + ((i * 37) % 20000)::int,
                (ARRAY['potential','prospect','registered','registered','active','active','active','core'])[1 + i % 8],
                (ARRAY[NULL,'long_tail','long_tail','ordinary','ordinary','ordinary','major','key'])[1 + (i / 3) % 8],
                (ARRAY['exploration','formation','stability','stability','decline','churned'])[1 + (i / 5) % 6],
                CASE WHEN (i / 5) % 6 = 5
                     THEN (ARRAY['poor_service','lack_of_personalisation','better_product','price','other'])[1 + i % 5] END,
                ({REGIONS})[1 + i % 8],
                ARRAY[({TAGS})[1 + i % 8]] || CASE WHEN i % 3 = 0 THEN ARRAY[({TAGS})[1 + (i / 8) % 8]] ELSE '{{}}'::text[] END,
                jsonb_build_object('shoe_size', 36 + i % 10, 'channel', (ARRAY['web','app','store'])[1 + i % 3]),
                'seed', 'S' || lpad(i::text, 9, '0'),
                jsonb_build_object('email', jsonb_build_object('granted', i % 2 = 0, 'updated_at', t.created)),
                t.created, t.created
         FROM (SELECT i,
                      ({FAMILY})[1 + (i * 13) % 30] AS family,
                      ({GIVEN})[1 + (i * 17) % 30] AS given,
                      ({COMPANIES})[1 + (i * 5) % 12] AS company,
                      now() - make_interval(secs => ((i * 104729) % 94608000)::double precision) AS created
               FROM generate_series($1::bigint, $2::bigint) AS i) AS t"
    );
    let orders = "INSERT INTO orders (id, source, external_id, customer_id, status, currency, subtotal_minor,
             discount_minor, shipping_minor, total_minor, ordered_at, created_at, updated_at)
         SELECT gen_random_uuid(), 'seed', c.external_ref || '-' || n, c.id,
                CASE WHEN n % 10 = 0 THEN 'refunded' WHEN n % 4 = 0 THEN 'fulfilled' ELSE 'paid' END, 'CNY',
                p.price, 0, 0, p.price, o.at, o.at, o.at
         FROM customers c
         CROSS JOIN generate_series(1, $3::bigint) AS n
         CROSS JOIN LATERAL (SELECT 1000 + (abs(hashtext(c.external_ref || n)) % 200000)::bigint AS price) AS p
         CROSS JOIN LATERAL (SELECT c.created_at + (now() - c.created_at) * ((abs(hashtext(c.external_ref || 'o' || n)) % 1000) / 1000.0) AS at) AS o
         WHERE c.source = 'seed' AND c.external_ref BETWEEN 'S' || lpad($1::text, 9, '0') AND 'S' || lpad($2::text, 9, '0')";
    let lines = "INSERT INTO order_lines (order_id, line_no, sku, name, category, spec, colour, quantity, unit_price_minor)
         SELECT o.id, 1, 'SKU-' || (abs(hashtext(o.external_id)) % 500), 'Product ' || (abs(hashtext(o.external_id)) % 500),
                (ARRAY['shoes','bags','apparel','accessories','home'])[1 + abs(hashtext(o.external_id)) % 5],
                (ARRAY['S','M','L','XL','EU 42'])[1 + abs(hashtext(o.id::text)) % 5],
                (ARRAY['black','brown','white','red','blue'])[1 + abs(hashtext(o.id::text || 'c')) % 5],
                1, o.total_minor
         FROM orders o
         WHERE o.source = 'seed' AND o.external_id BETWEEN 'S' || lpad($1::text, 9, '0') AND 'S' || lpad($2::text, 9, '0') || '-~'";
    let figures = "UPDATE customers c SET order_count = f.n, total_spent_minor = f.total, first_purchase_at = f.first,
             last_purchase_at = f.last, currency = 'CNY',
             level = CASE WHEN c.level IN ('potential', 'prospect', 'registered') THEN 'active' ELSE c.level END
         FROM (SELECT customer_id, count(*)::int AS n, sum(total_minor)::bigint AS total, min(ordered_at) AS first,
                      max(ordered_at) AS last
               FROM orders
               WHERE source = 'seed' AND status IN ('paid', 'fulfilled')
                 AND external_id BETWEEN 'S' || lpad($1::text, 9, '0') AND 'S' || lpad($2::text, 9, '0') || '-~'
               GROUP BY customer_id) AS f
         WHERE c.id = f.customer_id";
    let last = first + count - 1;
    use diesel_async::AsyncConnection;
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        diesel::sql_query(customers)
            .bind::<BigInt, _>(first)
            .bind::<BigInt, _>(last)
            .execute(conn)
            .await?;
        if orders_per_customer > 0 {
            diesel::sql_query(orders)
                .bind::<BigInt, _>(first)
                .bind::<BigInt, _>(last)
                .bind::<BigInt, _>(orders_per_customer)
                .execute(conn)
                .await?;
            for statement in [lines, figures] {
                diesel::sql_query(statement)
                    .bind::<BigInt, _>(first)
                    .bind::<BigInt, _>(last)
                    .execute(conn)
                    .await?;
            }
        }
        Ok(())
    })
    .await
}
