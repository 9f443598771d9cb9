//! Reading and writing customers: the rules every writer (HTTP, batch, CSV import, order
//! ingestion) goes through, so they cannot drift apart.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::fields::CustomerFields;
use super::{CustomerRow, Level, Stage, Tier};
use crate::auth::{Ownership, Principal, Role};
use crate::db::like_pattern;
use crate::db::prepared::{ByIdTemplate, Cached};
use crate::db::schema::{customers, users};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::etag::IfMatch;
use crate::kit::ids::{CustomerId, UserId};
use crate::kit::write::{self, Action, Locked, Versioned, Writer};

mod search;
pub use search::SearchPage;

/// The typed query that reads one [`CustomerRow`] by id.
type FindCustomer = diesel::dsl::Select<
    diesel::dsl::Find<customers::table, Uuid>,
    diesel::dsl::AsSelect<CustomerRow, Pg>,
>;

fn gone(row: &CustomerRow) -> ApiError {
    match row.merged_into {
        Some(survivor) => ApiError::NotFound(format!("this customer was merged into {survivor}")),
        None => ApiError::NotFound("no such customer".into()),
    }
}

impl Versioned for CustomerRow {
    const KIND: &'static str = "customer";
    type Id = CustomerId;

    crate::versioned_columns!(id: id, version: version, updated_at: updated_at);

    fn also_announces(&self, before: &Self) -> Vec<&'static str> {
        if self.tier == before.tier {
            Vec::new()
        } else {
            vec!["tier_changed"]
        }
    }

    fn customer_id(&self) -> Option<CustomerId> {
        Some(self.id)
    }

    fn ownership(&self) -> Ownership {
        Ownership::Owned {
            owner: self.owner_id,
            what: "the customers they own",
        }
    }

    fn view(&self) -> Value {
        serde_json::to_value(super::Customer::from(self.clone())).unwrap_or_default()
    }

    async fn lock(conn: &mut AsyncPgConnection, id: CustomerId) -> ApiResult<Self> {
        lock_live(conn, id).await
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        diesel::insert_into(customers::table)
            .values(self)
            .returning(CustomerRow::as_returning())
            .get_result(conn)
            .await
            .map_err(reference_conflict)
    }

    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        diesel::update(customers::table.find(self.id))
            .set(self)
            .returning(CustomerRow::as_returning())
            .get_result(conn)
            .await
            .map_err(reference_conflict)
    }
}

/// A live (not deleted) customer.
pub async fn find_live(mut conn: &AsyncPgConnection, id: CustomerId) -> ApiResult<CustomerRow> {
    static BY_ID: LazyLock<ByIdTemplate<FindCustomer>> = LazyLock::new(|| {
        ByIdTemplate::of(
            customers::table
                .find(Uuid::nil())
                .select(CustomerRow::as_select()),
        )
    });
    let row: CustomerRow = BY_ID.with(id.get()).get_result(&mut conn).await?;
    if row.deleted_at.is_some() {
        return Err(gone(&row));
    }
    Ok(row)
}

/// A customer row, locked for update, deleted or not.
pub async fn lock_row(conn: &mut AsyncPgConnection, id: CustomerId) -> ApiResult<CustomerRow> {
    static BY_ID: LazyLock<ByIdTemplate<diesel::dsl::ForUpdate<FindCustomer>>> =
        LazyLock::new(|| {
            ByIdTemplate::of(
                customers::table
                    .find(Uuid::nil())
                    .select(CustomerRow::as_select())
                    .for_update(),
            )
        });
    Ok(BY_ID.with(id.get()).get_result(conn).await?)
}

/// A live customer, locked for update.
pub async fn lock_live(conn: &mut AsyncPgConnection, id: CustomerId) -> ApiResult<CustomerRow> {
    let row = lock_row(conn, id).await?;
    if row.deleted_at.is_some() {
        return Err(gone(&row));
    }
    Ok(row)
}

/// The live customer with this `(source, external_ref)`, locked; `409` if it was deleted.
/// The reference itself is locked first, so that two writers creating the same new customer
/// take turns instead of one failing on the unique constraint.
pub async fn lock_by_reference(
    conn: &mut AsyncPgConnection,
    source: &str,
    external_ref: &str,
) -> ApiResult<Option<CustomerRow>> {
    crate::db::lock_key(conn, &format!("customer\n{source}\n{external_ref}")).await?;
    let row: Option<CustomerRow> = customers::table
        .filter(customers::source.eq(source))
        .filter(customers::external_ref.eq(external_ref))
        .select(CustomerRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?;
    match row {
        Some(row) if row.deleted_at.is_some() => Err(ApiError::Conflict(format!(
            "the customer {source}/{external_ref} was deleted{}",
            row.merged_into
                .map(|s| format!(" (merged into {s})"))
                .unwrap_or_default()
        ))),
        other => Ok(other),
    }
}

/// Checks what the row points at: the owner is an active user, the referrer a live customer
/// (`409`: the request is well formed, the records it names are not there).
async fn check_references(conn: &mut AsyncPgConnection, row: &CustomerRow) -> ApiResult<()> {
    let mut errors = Vec::new();
    if let Some(owner) = row.owner_id {
        let active: Option<bool> = users::table
            .find(owner)
            .select(users::active)
            .first(conn)
            .await
            .optional()?;
        if active != Some(true) {
            errors.push(FieldError::new(
                "owner_id",
                "not_found",
                "must be an active staff user",
            ));
        }
    }
    if let Some(referrer) = row.referred_by {
        let live: Option<Option<DateTime<Utc>>> = customers::table
            .find(referrer)
            .select(customers::deleted_at)
            .first(conn)
            .await
            .optional()?;
        if !matches!(live, Some(None)) {
            errors.push(FieldError::new(
                "referred_by",
                "not_found",
                "must be an existing customer",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Rules(errors))
    }
}

/// `409` naming the reference when `(source, external_ref)` is taken.
fn reference_conflict(error: diesel::result::Error) -> ApiError {
    match ApiError::from(error) {
        ApiError::Conflict(_) => {
            ApiError::Conflict("a customer with this source and external_ref already exists".into())
        }
        other => other,
    }
}

/// Creates a customer from validated fields. An agent becomes the owner unless they name
/// someone else, which is refused.
pub async fn insert_new(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    fields: CustomerFields,
) -> ApiResult<CustomerRow> {
    let now = Utc::now();
    let mut row = CustomerRow::new(now);
    if let Some(Principal::User {
        id,
        role: Role::Agent,
    }) = writer.principal()
    {
        row.owner_id = Some(*id);
    }
    let errors = fields.apply(&mut row, now);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // The right comes before the references: an agent naming another owner is refused
    // whether or not that owner exists.
    writer.ensure_may_write(row.ownership())?;
    check_references(conn, &row).await?;
    write::create(conn, writer, row, Action::CREATED).await
}

/// Applies fields to a locked live customer. Rules the changed customer as a whole would
/// break are `409`: they depend on what was stored.
pub async fn apply_update(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    current: Locked<CustomerRow>,
    fields: CustomerFields,
) -> ApiResult<CustomerRow> {
    let mut row = current.to_change();
    let errors = fields.apply(&mut row, Utc::now());
    if !errors.is_empty() {
        return Err(ApiError::Rules(errors));
    }
    writer.ensure_may_write(row.ownership())?;
    check_references(conn, &row).await?;
    write::save(conn, writer, current, row, Action::UPDATED).await
}

/// PATCH: If-Match, ownership, validation, audit.
pub async fn patch(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: CustomerId,
    if_match: &IfMatch,
    fields: CustomerFields,
) -> ApiResult<CustomerRow> {
    let current = write::lock(conn, writer, id, if_match).await?;
    apply_update(conn, writer, current, fields).await
}

/// Soft delete: the customer drops out of lists and reads.
pub async fn soft_delete(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    id: CustomerId,
    if_match: &IfMatch,
) -> ApiResult<()> {
    write::change(
        conn,
        writer,
        id,
        if_match,
        Action::DELETED,
        async |_, row: &mut CustomerRow| {
            row.deleted_at = Some(Utc::now());
            Ok(())
        },
    )
    .await?;
    Ok(())
}

/// What a batch or import item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpsertOutcome {
    Created,
    Updated,
}

/// Creates or updates the customer named by the fields' `(source, external_ref)`.
pub async fn upsert_by_reference(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    fields: CustomerFields,
) -> ApiResult<(UpsertOutcome, CustomerRow)> {
    let (Some(source), Some(external_ref)) = (
        fields.source.value().cloned(),
        fields.external_ref.value().cloned(),
    ) else {
        return Err(ApiError::invalid(
            "external_ref",
            "required",
            "source and external_ref identify the customer to upsert",
        ));
    };
    match lock_by_reference(conn, source.as_str(), external_ref.as_str()).await? {
        Some(current) => {
            let current = write::adopt(writer, current)?;
            let saved = apply_update(conn, writer, current, fields).await?;
            Ok((UpsertOutcome::Updated, saved))
        }
        None => Ok((
            UpsertOutcome::Created,
            insert_new(conn, writer, fields).await?,
        )),
    }
}

/// The documented sort orders of the customer list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    UpdatedAt,
    Name,
    TotalSpent,
    LastPurchaseAt,
}

/// A sort order: a field, ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            field: SortField::CreatedAt,
            descending: true,
        }
    }
}

impl Sort {
    /// The values `sort` accepts (each also with a leading `-`).
    pub const FIELDS: [&'static str; 5] = [
        "created_at",
        "updated_at",
        "name",
        "total_spent",
        "last_purchase_at",
    ];

    /// Parses `name` or `-name`; `400` for anything undocumented.
    pub fn parse(text: &str) -> ApiResult<Self> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, text),
        };
        let field = match name {
            "created_at" => SortField::CreatedAt,
            "updated_at" => SortField::UpdatedAt,
            "name" => SortField::Name,
            "total_spent" => SortField::TotalSpent,
            "last_purchase_at" => SortField::LastPurchaseAt,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "cannot sort by `{name}`; use one of {} (prefix - for descending)",
                    Self::FIELDS.join(", ")
                )));
            }
        };
        Ok(Self { field, descending })
    }

    fn name(self) -> String {
        let field = Self::FIELDS[self.field as usize];
        if self.descending {
            format!("-{field}")
        } else {
            field.to_owned()
        }
    }

    /// The SQL of the sorted expression, matching an index.
    fn column(self) -> &'static str {
        match self.field {
            SortField::CreatedAt => "customers.created_at",
            SortField::UpdatedAt => "customers.updated_at",
            SortField::Name => "customers.display_name",
            SortField::TotalSpent => "customers.total_spent_minor",
            SortField::LastPurchaseAt => "coalesce(customers.last_purchase_at, to_timestamp(0))",
        }
    }

    /// The `ORDER BY` of a list in this order, the id breaking ties (an index provides it).
    fn order_sql(self) -> String {
        format!("{} {}", self.column(), self.order_tail())
    }

    /// The same order by an expression no index provides, so that PostgreSQL cannot plan the
    /// statement as a walk along the sort index.
    fn unindexed_order_sql(self) -> String {
        let unindexed = match self.field {
            SortField::CreatedAt | SortField::UpdatedAt | SortField::LastPurchaseAt => {
                format!("{} + interval '0 s'", self.column())
            }
            SortField::Name => format!("{} || ''", self.column()),
            SortField::TotalSpent => format!("{} + 0", self.column()),
        };
        format!("{unindexed} {}", self.order_tail())
    }

    /// `(sort key, id) <` (or `>` ascending): the left side of "past this row" in the order.
    fn past_sql(self) -> String {
        let past = if self.descending { "<" } else { ">" };
        format!("({}, customers.id) {past}", self.column())
    }

    /// The direction of the sort key and the id after it.
    fn order_tail(self) -> &'static str {
        if self.descending {
            "DESC, customers.id DESC"
        } else {
            "ASC, customers.id ASC"
        }
    }

    /// The sort key of a row, as it goes into a cursor.
    fn key(self, row: &CustomerRow) -> Value {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        match self.field {
            SortField::CreatedAt => serde_json::json!(row.created_at),
            SortField::UpdatedAt => serde_json::json!(row.updated_at),
            SortField::Name => serde_json::json!(row.display_name),
            SortField::TotalSpent => serde_json::json!(row.total_spent_minor),
            SortField::LastPurchaseAt => serde_json::json!(row.last_purchase_at.unwrap_or(epoch)),
        }
    }
}

/// A position in the customer list: the sort it belongs to, the last key and id served.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerCursor {
    sort: String,
    key: Value,
    id: Uuid,
}

impl CustomerCursor {
    /// The cursor after `row` in `sort`.
    pub fn after(sort: Sort, row: &CustomerRow) -> Self {
        Self {
            sort: sort.name(),
            key: sort.key(row),
            id: row.id.get(),
        }
    }
}

/// Parsed list filters.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    pub q: Option<String>,
    pub level: Option<Level>,
    pub tier: Option<Tier>,
    pub stage: Option<Stage>,
    pub owner_id: Option<UserId>,
    pub region: Option<String>,
    pub tag: Option<String>,
    pub birthday_month: Option<i32>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// `attr.<name>=<value>` pairs.
    pub attributes: Vec<(String, String)>,
}

impl ListFilters {
    /// The search term, unless blank (a blank `q` filters nothing).
    fn search_term(&self) -> Option<&str> {
        self.q.as_deref().filter(|q| !q.trim().is_empty())
    }

    /// Whether no filter but `q` is set: such a page's plan does not depend on the values, so
    /// it stays prepared. Destructured whole, so a new filter cannot be forgotten here (an
    /// unlisted filter would be kept prepared with a generic plan).
    fn has_no_filters_besides_q(&self) -> bool {
        let Self {
            q: _,
            level,
            tier,
            stage,
            owner_id,
            region,
            tag,
            birthday_month,
            created_after,
            created_before,
            attributes,
        } = self;
        level.is_none()
            && tier.is_none()
            && stage.is_none()
            && owner_id.is_none()
            && region.is_none()
            && tag.is_none()
            && birthday_month.is_none()
            && created_after.is_none()
            && created_before.is_none()
            && attributes.is_empty()
    }
}

/// An attribute filter's value as a number or boolean, when it reads as one (it then also
/// matches attributes stored with that type).
fn typed_attribute(value: &str) -> Option<Value> {
    serde_json::from_str(value)
        .ok()
        .filter(|v: &Value| v.is_number() || v.is_boolean())
}

type BoxedCondition = Box<dyn BoxableExpression<customers::table, Pg, SqlType = Bool>>;
/// A list page's `SELECT`, built from boxed conditions.
type BoxedSelect = diesel::helper_types::IntoBoxed<
    'static,
    diesel::helper_types::Select<customers::table, diesel::helper_types::AsSelect<CustomerRow, Pg>>,
    Pg,
>;

/// The statement of one list page, public so tests and benchmarks can `EXPLAIN` it: a plain
/// `SELECT`, or for a search the bounded statement of [`SearchPage`].
pub enum ListStatement {
    Select(BoxedSelect),
    Search(SearchPage),
}

impl QueryFragment<Pg> for ListStatement {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match self {
            Self::Select(select) => QueryFragment::<Pg>::walk_ast(select, out),
            Self::Search(search) => search.walk_ast(out),
        }
    }

    /// A searched page is kept prepared only where [`list_statement`] says so.
    fn is_safe_to_cache_prepared(&self, backend: &Pg) -> QueryResult<bool> {
        match self {
            Self::Select(select) => QueryFragment::<Pg>::is_safe_to_cache_prepared(select, backend),
            Self::Search(_) => Ok(false),
        }
    }
}

impl QueryId for ListStatement {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for ListStatement {
    type SqlType = <BoxedSelect as Query>::SqlType;
}

/// The statement of one page: live customers, filtered, in `sort` order, after the cursor.
///
/// Unfiltered pages (any sort, with or without a cursor) stay prepared: their plan is the same
/// index walk whatever the values. So do pages searched by `q` alone, whose plan is fixed by
/// the statement's shape ([`SearchPage`]). Other filtered pages are parsed per request so
/// that PostgreSQL plans them for the values: a generic plan cannot know whether a tag is on
/// 0.1 % or all customers.
pub fn list_statement(
    filters: &ListFilters,
    sort: Sort,
    after: Option<&CustomerCursor>,
    limit: i64,
) -> ApiResult<Cached<ListStatement>> {
    let conditions = list_conditions(filters, sort, after)?;
    let statement = match filters.search_term() {
        Some(q) => ListStatement::Search(SearchPage::new(conditions, like_pattern(q), sort, limit)),
        None => {
            let mut query = customers::table
                .select(CustomerRow::as_select())
                .into_boxed();
            for condition in conditions {
                query = query.filter(condition);
            }
            ListStatement::Select(query.order(sql::<Text>(&sort.order_sql())).limit(limit))
        }
    };
    Ok(Cached::when(filters.has_no_filters_besides_q(), statement))
}

/// The conditions of a list page but the search term (which [`SearchPage`] applies): live
/// customers, the other filters, and the cursor.
fn list_conditions(
    filters: &ListFilters,
    sort: Sort,
    after: Option<&CustomerCursor>,
) -> ApiResult<Vec<BoxedCondition>> {
    let mut conditions: Vec<BoxedCondition> = vec![Box::new(customers::deleted_at.is_null())];
    if let Some(level) = filters.level {
        conditions.push(Box::new(customers::level.eq(level.as_str())));
    }
    if let Some(tier) = filters.tier {
        conditions.push(Box::new(
            customers::tier.eq(tier.as_str()).assume_not_null(),
        ));
    }
    if let Some(stage) = filters.stage {
        conditions.push(Box::new(customers::lifecycle_stage.eq(stage.as_str())));
    }
    if let Some(owner) = filters.owner_id {
        conditions.push(Box::new(customers::owner_id.eq(owner).assume_not_null()));
    }
    if let Some(region) = &filters.region {
        conditions.push(Box::new(
            customers::region.eq(region.clone()).assume_not_null(),
        ));
    }
    if let Some(tag) = &filters.tag {
        conditions.push(Box::new(customers::tags.contains(vec![tag.clone()])));
    }
    if let Some(month) = filters.birthday_month {
        conditions.push(Box::new(
            sql::<Bool>("extract(month FROM customers.birthday)::int = ").bind::<Integer, _>(month),
        ));
    }
    if let Some(after) = filters.created_after {
        conditions.push(Box::new(customers::created_at.ge(after)));
    }
    if let Some(before) = filters.created_before {
        conditions.push(Box::new(customers::created_at.lt(before)));
    }
    for (name, value) in &filters.attributes {
        let as_text = serde_json::json!({ name: value });
        conditions.push(match typed_attribute(value) {
            Some(typed) => Box::new(
                customers::attributes
                    .contains(as_text)
                    .or(customers::attributes.contains(serde_json::json!({ name: typed }))),
            ),
            None => Box::new(customers::attributes.contains(as_text)),
        });
    }
    if let Some(cursor) = after {
        if cursor.sort != sort.name() {
            return Err(ApiError::BadRequest(
                "the cursor belongs to another sort order".into(),
            ));
        }
        conditions.push(keyset_condition(sort, &cursor.key, cursor.id)?);
    }
    Ok(conditions)
}

fn keyset_condition(sort: Sort, key: &Value, id: Uuid) -> ApiResult<BoxedCondition> {
    let invalid =
        || ApiError::BadRequest("cursor is not valid; use next_cursor from a previous page".into());
    let head = format!("{} (", sort.past_sql());
    Ok(match sort.field {
        SortField::CreatedAt | SortField::UpdatedAt | SortField::LastPurchaseAt => {
            let at: DateTime<Utc> = serde_json::from_value(key.clone()).map_err(|_| invalid())?;
            Box::new(
                sql::<Bool>(&head)
                    .bind::<Timestamptz, _>(at)
                    .sql(", ")
                    .bind::<diesel::sql_types::Uuid, _>(id)
                    .sql(")"),
            )
        }
        SortField::Name => {
            let name = key.as_str().ok_or_else(invalid)?.to_owned();
            Box::new(
                sql::<Bool>(&head)
                    .bind::<Text, _>(name)
                    .sql(", ")
                    .bind::<diesel::sql_types::Uuid, _>(id)
                    .sql(")"),
            )
        }
        SortField::TotalSpent => {
            let total = key.as_i64().ok_or_else(invalid)?;
            Box::new(
                sql::<Bool>(&head)
                    .bind::<BigInt, _>(total)
                    .sql(", ")
                    .bind::<diesel::sql_types::Uuid, _>(id)
                    .sql(")"),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_names_parse() {
        assert_eq!(
            Sort::parse("-total_spent").unwrap(),
            Sort {
                field: SortField::TotalSpent,
                descending: true
            }
        );
        assert_eq!(Sort::parse("name").unwrap().name(), "name");
        assert!(matches!(
            Sort::parse("password_hash"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
