//! `/api/v1/complaints`: log a complaint from any window, work it through the state machine,
//! comment, resolve with compensation, record the customer's rating.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::calendar::{Calendar, Counting};
use super::policies::{self, DEFAULT_REOPEN_WINDOW_DAYS, Facts, PolicyRow};
use super::sla::{self, ClockRow, Metric};
use super::{
    Category, Channel, CompensationKind, Complaint, ComplaintRecord, ComplaintRow, Resolution,
    ResolutionType, RootCause, Satisfaction, Severity, Status, Visibility, calendars,
};
use crate::audit::Subject;
use crate::auth::{Authorized, ComplaintsRead, ComplaintsWrite, Principal, Role};
use crate::customers::api as customers;
use crate::customers::api::{Level, Tier};
use crate::db::keyset::{Direction, older_than, past};
use crate::db::schema::{
    answer_uses, answers, complaint_comments, complaint_resolutions, complaint_satisfaction,
    complaint_sla_policies, complaints, orders,
};
use crate::db::shared_reads::SharedRead;
use crate::db::{DbConn, like_pattern};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::{Field, ValidJson};
use crate::http::pagination::{Page, PageParams};
use crate::http::query::{Query, search_schema, search_term};
use crate::kit::ids::{AnswerId, CalendarId, ComplaintId, CustomerId, OrderId, UserId};
use crate::kit::input::{CLOCK_SKEW_MINUTES, Text, Whole, present};
use crate::kit::registry::{PointsGrant, Registry};
use crate::kit::workflow::ensure_move;
use crate::kit::write::{self, Action, Entry, Versioned, Writer};

crate::routes!(
    create,
    list,
    get_one,
    update,
    transition,
    post_comment,
    list_comments,
    resolve,
    get_resolution,
    rate
);

/// A status change.
const STATUS_CHANGED: Action = Action::named("status_changed", "status_changed");
/// A resolution recorded.
const RESOLVED: Action = Action::named("resolved", "resolved");
/// The first response given by a public comment.
const RESPONDED: Action = Action::named("responded", "updated");

/// A complaint's subject line, wherever one is written.
pub type SubjectLine = Text<1, 200>;
/// A complaint's description, wherever one is written.
pub type Description = Text<1, 10000>;

/// Body of `POST /complaints`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComplaint {
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub category: Category,
    pub severity: Severity,
    #[validate(nested)]
    pub subject: SubjectLine,
    #[validate(nested)]
    pub description: Description,
    /// An order of this customer that the complaint is about.
    pub order_id: Option<OrderId>,
    #[validate(nested)]
    pub sku: Option<Text<0, 100>>,
    /// Managers and keys may assign anyone active; an agent's complaint is assigned to the
    /// agent. Default: unassigned (an agent: themselves).
    pub assignee_id: Option<UserId>,
    /// The time promised to the customer (a promise already past when logged is missed).
    pub promised_by: Option<DateTime<Utc>>,
    /// When the complaint reached the company, if earlier than now (a letter in the mailbox);
    /// not in the future. The clocks start here. Default: now.
    pub received_at: Option<DateTime<Utc>>,
}

/// Body of `PATCH /complaints/{id}`. A change of severity or channel re-applies the SLA
/// policies, keeping the time already elapsed and paused.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ComplaintPatch {
    pub channel: Option<Channel>,
    pub category: Option<Category>,
    pub severity: Option<Severity>,
    #[validate(nested)]
    pub subject: Option<SubjectLine>,
    #[validate(nested)]
    pub description: Option<Description>,
    #[schema(nullable)]
    pub order_id: Field<OrderId>,
    #[validate(nested)]
    #[schema(nullable)]
    pub sku: Field<Text<0, 100>>,
    /// Managers assign; an agent cannot give a complaint away. `null` unassigns.
    #[schema(nullable)]
    pub assignee_id: Field<UserId>,
    /// `null` withdraws the promise (and its clock).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub promised_by: Field<DateTime<Utc>>,
}

/// Body of `POST /complaints/{id}/transitions`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// The next status. `resolved` goes through `POST /complaints/{id}/resolve`.
    pub to: Status,
    /// Kept as an internal comment.
    #[validate(nested)]
    pub note: Option<Text<1, 5000>>,
}

/// Body of `POST /complaints/{id}/comments`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// `public` comments are the customer's to see; the first by a staff user is the first
    /// response. `internal` notes are not.
    pub visibility: Visibility,
    #[validate(nested)]
    pub body: Text<1, 10000>,
    /// The standard answer used; its use count grows by one.
    pub answer_id: Option<AnswerId>,
}

/// A comment on a complaint.
#[derive(Debug, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = complaint_comments)]
pub struct Comment {
    pub id: Uuid,
    pub complaint_id: ComplaintId,
    pub visibility: Visibility,
    /// `user`, `api_key` or `system`.
    pub author_type: String,
    pub author_id: Option<Uuid>,
    pub body: String,
    pub answer_id: Option<AnswerId>,
    pub created_at: DateTime<Utc>,
}

/// The resolution of `POST /complaints/{id}/resolve`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolutionInput {
    #[serde(rename = "type")]
    pub resolution_type: ResolutionType,
    #[validate(nested)]
    pub description: Text<1, 5000>,
    pub root_cause_category: RootCause,
    #[validate(nested)]
    pub root_cause: Text<1, 2000>,
    /// What changes so that it does not happen again.
    #[validate(nested)]
    pub corrective_action: Text<1, 2000>,
}

/// A goodwill gesture given with the resolution, in the same transaction.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CompensationInput {
    /// A goodwill gift (a gift after a serious complaint or for an important customer).
    Gift {
        /// The gift.
        description: Text<1, 500>,
    },
    /// Points credited to the customer's club membership.
    Points {
        points: Whole<1, 1_000_000>,
        /// The reason for the points.
        description: Text<1, 500>,
    },
}

impl Validate for CompensationInput {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        let mut errors = validator::ValidationErrors::new();
        match self {
            Self::Gift { description } => {
                errors.merge_self("description", description.validate());
            }
            Self::Points {
                points,
                description,
            } => {
                errors.merge_self("points", points.validate());
                errors.merge_self("description", description.validate());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// One shape per kind, each closed to other fields (utoipa's derive leaves a tagged enum's
/// variants open, though serde refuses unknown fields).
impl utoipa::PartialSchema for CompensationInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let shape = |kind: &str, about: &str, points: bool| {
            let mut shape = ObjectBuilder::new()
                .description(Some(about))
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .property(
                    "kind",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([kind])),
                )
                .required("kind")
                .property(
                    "description",
                    <Text<1, 500> as utoipa::PartialSchema>::schema(),
                )
                .required("description");
            if points {
                shape = shape
                    .property(
                        "points",
                        <Whole<1, 1_000_000> as utoipa::PartialSchema>::schema(),
                    )
                    .required("points");
            }
            shape
        };
        OneOfBuilder::new()
            .description(Some(
                "A goodwill gesture given with the resolution, in the same transaction.",
            ))
            .item(shape("gift", "A goodwill gift; `description` names it.", false))
            .item(shape(
                "points",
                "Points credited to the customer's club membership; `description` gives the reason.",
                true,
            ))
            .into()
    }
}

impl ToSchema for CompensationInput {}

impl CompensationInput {
    fn kind(&self) -> CompensationKind {
        match self {
            Self::Gift { .. } => CompensationKind::Gift,
            Self::Points { .. } => CompensationKind::Points,
        }
    }

    fn points(&self) -> Option<i32> {
        match self {
            Self::Points { points, .. } => Some(points.get() as i32),
            Self::Gift { .. } => None,
        }
    }

    fn into_description(self) -> String {
        match self {
            Self::Gift { description } | Self::Points { description, .. } => {
                description.into_inner()
            }
        }
    }
}

/// Body of `POST /complaints/{id}/resolve`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    #[validate(nested)]
    pub resolution: ResolutionInput,
    #[validate(nested)]
    pub compensation: Option<CompensationInput>,
}

/// Body of `POST /complaints/{id}/satisfaction`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRating {
    #[validate(nested)]
    pub rating: Whole<1, 5>,
    #[validate(nested)]
    pub comment: Option<Text<0, 2000>>,
}

/// Filters of `GET /complaints`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComplaintFilters {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub channel: Option<Channel>,
    pub assignee_id: Option<UserId>,
    pub customer_id: Option<CustomerId>,
    /// Only complaints with a running clock past its due time.
    pub overdue: Option<bool>,
    /// Logged at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Logged before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// Words in the subject or description.
    #[param(schema_with = q_schema)]
    pub q: Option<String>,
}

impl ComplaintFilters {
    /// Whether the page walks one index and shows every row it reads, so that it is fast by
    /// construction and may share the read connection: no filter but the assignee (with or
    /// without the status: `complaints_status_assignee_idx`, `complaints_assignee_idx`), the
    /// customer (whose complaints are few), or none at all (`complaints_created_idx`).
    /// Destructured whole, so a new filter is not forgotten here.
    fn walks_one_index(&self) -> bool {
        let Self {
            status,
            severity,
            category,
            channel,
            assignee_id,
            customer_id,
            overdue,
            created_after,
            created_before,
            q,
        } = self;
        let narrowed = severity.is_some()
            || category.is_some()
            || channel.is_some()
            || overdue.is_some()
            || created_after.is_some()
            || created_before.is_some()
            || q.is_some();
        !narrowed && (assignee_id.is_some() || customer_id.is_some() || status.is_none())
    }
}

fn q_schema() -> utoipa::openapi::schema::Schema {
    search_schema("Case-insensitive words in the subject or description")
}

/// The calendars a record's clocks count in.
struct Calendars(HashMap<CalendarId, Calendar>);

impl Calendars {
    async fn of(conn: &mut AsyncPgConnection, clocks: &[ClockRow]) -> ApiResult<Self> {
        let mut map = HashMap::new();
        for id in clocks.iter().filter_map(|c| c.calendar_id) {
            if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(id) {
                slot.insert(calendars::load(conn, id).await?);
            }
        }
        Ok(Self(map))
    }

    fn counting(&self, calendar: Option<CalendarId>) -> Counting<'_> {
        calendar
            .and_then(|id| self.0.get(&id))
            .map_or(Counting::Always, Counting::Business)
    }

    /// Applies `change` to every clock with the counting it uses.
    fn each(
        &self,
        record: &mut ComplaintRecord,
        mut change: impl FnMut(&mut ClockRow, Counting<'_>),
    ) {
        for clock in &mut record.clocks {
            let counting = self.counting(clock.calendar_id);
            change(clock, counting);
        }
    }
}

/// Whether the complaint starts one level up the ladder: a key or core customer, or critical.
fn escalation_base(severity: Severity, tier: Option<Tier>, level: Level) -> i32 {
    let important =
        severity == Severity::Critical || tier == Some(Tier::Key) || level == Level::Core;
    i32::from(important)
}

/// Applies the first matching policy to the record: targets for the response and resolution
/// clocks (new ones start at `received_at`; existing ones keep their start and pauses), the
/// policy recorded, and the ladder scheduled. With no match the record keeps what it has.
async fn apply_policy(conn: &mut AsyncPgConnection, record: &mut ComplaintRecord) -> ApiResult<()> {
    let facts = Facts {
        severity: record.row.severity,
        channel: record.row.channel,
        tier: record.row.customer_tier,
        level: record.row.customer_level,
    };
    record.row.escalation_base = escalation_base(facts.severity, facts.tier, facts.level);
    let Some(policy) = policies::first_match(conn, &facts).await? else {
        return schedule(conn, record).await;
    };
    let calendar = match policy.calendar_id {
        Some(id) => Some(calendars::load(conn, id).await?),
        None => None,
    };
    let counting = calendar
        .as_ref()
        .map_or(Counting::Always, Counting::Business);
    for metric in [Metric::FirstResponse, Metric::Resolution] {
        let minutes = policy.target_minutes(metric).unwrap_or(1);
        match record.clock_mut(metric) {
            Some(clock) => clock.retarget(minutes, policy.calendar_id, counting),
            None => record.clocks.push(ClockRow::start(
                record.row.id,
                metric,
                Some((minutes, policy.calendar_id)),
                record.row.received_at,
                counting,
            )),
        }
    }
    record.row.sla_policy_id = Some(policy.id);
    record.row.sla_policy_version = Some(policy.version);
    record.row.reopen_window_days = policy.reopen_window_days;
    record.ladder = Some(ladder_of(Some(&policy), record));
    Ok(())
}

/// The ladder of the record's clocks under its recorded policy.
fn ladder_of(policy: Option<&PolicyRow>, record: &ComplaintRecord) -> Vec<sla::Scheduled> {
    let steps = policy.map(PolicyRow::ladder).unwrap_or_default();
    let metrics: Vec<Metric> = record.clocks.iter().map(|c| c.metric).collect();
    sla::ladder(&steps, &metrics, record.row.escalation_base)
}

/// Schedules the ladder of the record's clocks under the policy it records (a clock was
/// added or removed).
async fn schedule(conn: &mut AsyncPgConnection, record: &mut ComplaintRecord) -> ApiResult<()> {
    let policy: Option<PolicyRow> = match record.row.sla_policy_id {
        Some(id) => complaint_sla_policies::table
            .find(id)
            .select(PolicyRow::as_select())
            .first(conn)
            .await
            .optional()?,
        None => None,
    };
    record.ladder = Some(ladder_of(policy.as_ref(), record));
    Ok(())
}

/// `409` unless the order exists and is this customer's.
async fn check_order(
    conn: &mut AsyncPgConnection,
    order: OrderId,
    customer: CustomerId,
) -> ApiResult<()> {
    let owner: Option<CustomerId> = orders::table
        .find(order)
        .select(orders::customer_id)
        .first(conn)
        .await
        .optional()?;
    customers::ensure_customers("order_id", "order", owner, customer)
}

/// Log a complaint. The first matching SLA policy sets its clocks, all in one transaction
/// with the audit entry and the `complaint.created` event.
#[utoipa::path(
    tag = "complaints",
    request_body(content = NewComplaint, example = json!({
        "customer_id": "0192f0c1-7a2b-7c3d-8e4f-5a6b7c8d9e0f", "channel": "phone", "category": "product_quality",
        "severity": "high", "subject": "Sole came off after a week", "description": "The left shoe's sole came off on the sixth day."
    })),
    responses(
        (status = 201, description = "Logged", body = Complaint, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "The customer, order or assignee does not exist (or does not fit)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints")]
async fn create(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    body: ValidJson<NewComplaint>,
) -> ApiResult<HttpResponse> {
    let assignee = body.0.assignee_id.or(match &caller.principal {
        Principal::User {
            id,
            role: Role::Agent,
        } => Some(*id),
        _ => None,
    });
    let writer = Writer::of(&caller.principal);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            open(conn, &writer, body.0, assignee).await
        })
        .await?;
    Ok(created(
        format!("/api/v1/complaints/{}", saved.row.id),
        &saved.view(Utc::now()),
        saved.row.version,
    ))
}

/// Logs a complaint in the caller's transaction (a visit's follow-up opens one too): checks
/// the customer, order and assignee, applies the first matching SLA policy, and writes it
/// with its audit entry and `complaint.created` event.
pub async fn open(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    b: NewComplaint,
    assignee: Option<UserId>,
) -> ApiResult<ComplaintRecord> {
    let now = Utc::now();
    let received_at = b.received_at.unwrap_or(now);
    if received_at > now + Duration::minutes(CLOCK_SKEW_MINUTES) {
        return Err(ApiError::invalid(
            "received_at",
            "range",
            "cannot be in the future",
        ));
    }

    let customer = customers::find_referenced(conn, b.customer_id).await?;
    if let Some(order) = b.order_id {
        check_order(conn, order, customer.id).await?;
    }
    if let Some(user) = assignee {
        crate::users::ensure_active(conn, "assignee_id", user).await?;
    }
    let id = ComplaintId::new();
    let mut record = ComplaintRecord {
        row: ComplaintRow {
            id,
            customer_id: customer.id,
            order_id: b.order_id,
            sku: present(b.sku),
            channel: b.channel,
            category: b.category,
            severity: b.severity,
            subject: b.subject.into_inner(),
            description: b.description.into_inner(),
            assignee_id: assignee,
            status: Status::New,
            promised_by: b.promised_by,
            reopen_count: 0,
            cycle: 1,
            customer_tier: customer.tier,
            customer_level: customer.level,
            sla_policy_id: None,
            sla_policy_version: None,
            escalation_base: 0,
            reopen_window_days: DEFAULT_REOPEN_WINDOW_DAYS,
            next_due_at: None,
            received_at,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        },
        clocks: Vec::new(),
        ladder: None,
        resolution: None,
        satisfaction: None,
    };
    if let Some(promise) = b.promised_by {
        record
            .clocks
            .push(ClockRow::promise(id, received_at, promise));
    }
    apply_policy(conn, &mut record).await?;
    write::create(conn, writer, record, Action::CREATED).await
}

/// The statement of a complaints list page.
pub type ListQuery = diesel::helper_types::IntoBoxed<
    'static,
    diesel::helper_types::Select<
        complaints::table,
        diesel::helper_types::AsSelect<ComplaintRow, diesel::pg::Pg>,
    >,
    diesel::pg::Pg,
>;

/// A page of `GET /complaints`: the rows after `after` matching the filters, newest first
/// (public so that tests and benchmarks can `EXPLAIN` it).
pub fn list_query(
    f: &ComplaintFilters,
    after: Option<(DateTime<Utc>, ComplaintId)>,
    limit: i64,
    now: DateTime<Utc>,
) -> ApiResult<ListQuery> {
    let mut query = complaints::table
        .select(ComplaintRow::as_select())
        .order((complaints::created_at.desc(), complaints::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(older_than(
            complaints::created_at,
            complaints::id,
            (at, id.get()),
        ));
    }
    if let Some(status) = f.status {
        query = query.filter(complaints::status.eq(status));
    }
    if let Some(severity) = f.severity {
        query = query.filter(complaints::severity.eq(severity));
    }
    if let Some(category) = f.category {
        query = query.filter(complaints::category.eq(category));
    }
    if let Some(channel) = f.channel {
        query = query.filter(complaints::channel.eq(channel));
    }
    if let Some(assignee) = f.assignee_id {
        query = query.filter(complaints::assignee_id.eq(assignee));
    }
    if let Some(customer) = f.customer_id {
        query = query.filter(complaints::customer_id.eq(customer));
    }
    match f.overdue {
        Some(true) => {
            query = query
                .filter(complaints::next_due_at.is_not_null())
                .filter(complaints::next_due_at.lt(now));
        }
        Some(false) => {
            query = query.filter(
                complaints::next_due_at
                    .is_null()
                    .or(complaints::next_due_at.ge(now)),
            );
        }
        None => {}
    }
    if let Some(after) = f.created_after {
        query = query.filter(complaints::created_at.ge(after));
    }
    if let Some(before) = f.created_before {
        query = query.filter(complaints::created_at.lt(before));
    }
    if let Some(q) = search_term(f.q.as_deref())? {
        query = query.filter(complaints::search.like(like_pattern(q)));
    }
    Ok(query)
}

#[derive(Serialize, Deserialize)]
struct ComplaintCursor(DateTime<Utc>, ComplaintId);

/// List complaints, newest first.
#[utoipa::path(tag = "complaints", params(PageParams, ComplaintFilters), responses((status = 200, body = Page<Complaint>)))]
#[get("/complaints")]
async fn list(
    _: Authorized<ComplaintsRead>,
    read: SharedRead,
    page: Query<PageParams>,
    filters: Query<ComplaintFilters>,
) -> ApiResult<web::Json<Page<Complaint>>> {
    let window = page.window::<ComplaintCursor>()?;
    let after = window
        .after
        .as_ref()
        .map(|ComplaintCursor(at, id)| (*at, *id));
    let (records, next_cursor) = read
        .run_when(filters.walks_one_index(), async |mut conn| {
            let query = list_query(&filters, after, window.fetch(), Utc::now())?;
            let rows = query.load(&mut conn).await?;
            let page = window.page(rows, |c| ComplaintCursor(c.created_at, c.id));
            let records = ComplaintRecord::assemble(conn, page.data, false).await?;
            Ok((records, page.next_cursor))
        })
        .await?;
    let now = Utc::now();
    Ok(web::Json(Page {
        data: records.iter().map(|r| r.view(now)).collect(),
        next_cursor,
    }))
}

/// Get a complaint with every clock, this cycle's resolution and rating.
#[utoipa::path(tag = "complaints", responses((status = 200, body = Complaint, headers(("ETag" = String)))))]
#[get("/complaints/{id}")]
async fn get_one(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row: ComplaintRow = complaints::table
        .find(ComplaintId::from(*id))
        .select(ComplaintRow::as_select())
        .first(&mut conn)
        .await?;
    let record = ComplaintRecord::assemble(&conn, vec![row], true)
        .await?
        .remove(0);
    Ok(versioned(
        StatusCode::OK,
        &record.view(Utc::now()),
        record.row.version,
    ))
}

/// A complaint as a write response shows it.
fn respond(record: &ComplaintRecord) -> HttpResponse {
    versioned(StatusCode::OK, &record.view(Utc::now()), record.row.version)
}

/// Change a complaint's facts, assignee or promise.
#[utoipa::path(
    tag = "complaints",
    request_body = ComplaintPatch,
    responses(
        (status = 200, body = Complaint, headers(("ETag" = String))),
        (status = 409, description = "The order or assignee does not exist (or does not fit)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/complaints/{id}")]
async fn update(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<ComplaintPatch>,
) -> ApiResult<HttpResponse> {
    let p = body.0;
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let locked = write::lock::<ComplaintRecord>(conn, &writer, id, &if_match).await?;
            let mut after = locked.to_change();
            let row = &mut after.row;
            let reapply = p.severity.is_some_and(|s| s != row.severity)
                || p.channel.is_some_and(|c| c != row.channel);
            row.severity = p.severity.unwrap_or(row.severity);
            row.channel = p.channel.unwrap_or(row.channel);
            row.category = p.category.unwrap_or(row.category);
            if let Some(subject) = p.subject {
                row.subject = subject.into_inner();
            }
            if let Some(description) = p.description {
                row.description = description.into_inner();
            }
            match p.order_id {
                Field::Absent => {}
                Field::Null => row.order_id = None,
                Field::Value(order) => {
                    check_order(conn, order, row.customer_id).await?;
                    row.order_id = Some(order);
                }
            }
            match p.sku {
                Field::Absent => {}
                Field::Null => row.sku = None,
                Field::Value(sku) => row.sku = present(Some(sku)),
            }
            match p.assignee_id {
                Field::Absent => {}
                Field::Null => row.assignee_id = None,
                Field::Value(user) => {
                    crate::users::ensure_active(conn, "assignee_id", user).await?;
                    row.assignee_id = Some(user);
                }
            }
            let mut reschedule = false;
            match p.promised_by {
                Field::Absent => {}
                Field::Null => {
                    row.promised_by = None;
                    after.clocks.retain(|c| c.metric != Metric::Promise);
                    reschedule = true;
                }
                Field::Value(promise) => {
                    row.promised_by = Some(promise);
                    let (complaint, received) = (row.id, row.received_at);
                    match after.clock_mut(Metric::Promise) {
                        Some(clock) if clock.fulfilled_at.is_none() => clock.due_at = Some(promise),
                        Some(_) => {}
                        None => {
                            after
                                .clocks
                                .push(ClockRow::promise(complaint, received, promise));
                            reschedule = true;
                        }
                    }
                }
            }
            if reapply {
                apply_policy(conn, &mut after).await?;
            } else if reschedule {
                schedule(conn, &mut after).await?;
            }
            write::save(conn, &writer, locked, after, Action::UPDATED).await
        })
        .await?;
    Ok(respond(&saved))
}

/// Records an internal or public comment by the writer in the caller's transaction; a use of
/// a standard answer is counted.
async fn add_comment(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    record: &ComplaintRecord,
    visibility: super::Visibility,
    body: String,
    answer: Option<AnswerId>,
) -> ApiResult<Comment> {
    if let Some(answer) = answer {
        let cited = diesel::update(
            answers::table
                .find(answer)
                .filter(answers::deleted_at.is_null()),
        )
        .set(answers::use_count.eq(answers::use_count + 1))
        .execute(conn)
        .await?;
        if cited == 0 {
            return Err(ApiError::rule(
                "answer_id",
                "not_found",
                "no such standard answer",
            ));
        }
        diesel::insert_into(answer_uses::table)
            .values(answer_uses::answer_id.eq(answer))
            .execute(conn)
            .await?;
    }
    let (author_type, author_id) = writer.actor().parts();
    let comment: Comment = diesel::insert_into(complaint_comments::table)
        .values((
            complaint_comments::id.eq(Uuid::now_v7()),
            complaint_comments::complaint_id.eq(record.row.id),
            complaint_comments::visibility.eq(visibility),
            complaint_comments::author_type.eq(author_type),
            complaint_comments::author_id.eq(author_id),
            complaint_comments::body.eq(body),
            complaint_comments::answer_id.eq(answer),
        ))
        .returning(Comment::as_returning())
        .get_result(conn)
        .await?;
    let data = serde_json::to_value(&comment).unwrap_or_default();
    Entry {
        subject: subject(record),
        event_type: "complaint.commented".into(),
        audit_action: "commented",
    }
    .record(
        conn,
        writer,
        json!({"comment": {"old": null, "new": data}}),
        data.clone(),
    )
    .await?;
    Ok(comment)
}

fn subject(record: &ComplaintRecord) -> Subject {
    Subject {
        entity_type: ComplaintRecord::KIND,
        entity_id: record.row.id.get(),
        customer_id: Some(record.row.customer_id),
    }
}

/// Fulfils the first-response clock (the acknowledgement, or a public staff comment).
fn first_response(record: &mut ComplaintRecord, calendars: &Calendars, now: DateTime<Utc>) {
    record.row.first_response_at.get_or_insert(now);
    calendars.each(record, |clock, counting| {
        if clock.metric == Metric::FirstResponse {
            clock.fulfil(now, counting);
        }
    });
}

/// Move a complaint along its workflow.
#[utoipa::path(
    tag = "complaints",
    request_body(content = TransitionRequest, example = json!({"to": "acknowledged", "note": "Called the customer back"})),
    responses(
        (status = 200, body = Complaint, headers(("ETag" = String))),
        (status = 409, description = "The move is not allowed from the current status (`allowed` lists those that are), or the reopen window has passed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints/{id}/transitions")]
async fn transition(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<TransitionRequest>,
) -> ApiResult<HttpResponse> {
    let TransitionRequest { to, note } = body.0;
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let locked = write::lock::<ComplaintRecord>(conn, &writer, id, &if_match).await?;
            let from = locked.row().row.status;
            ensure_move("a complaint", from, to)?;
            if to == Status::Resolved {
                return Err(ApiError::rule(
                    "to",
                    "resolve",
                    "resolve with POST /complaints/{id}/resolve, which records the resolution",
                ));
            }
            let now = Utc::now();
            let mut after = locked.to_change();
            let calendars = Calendars::of(conn, &after.clocks).await?;
            match to {
                Status::Acknowledged => first_response(&mut after, &calendars, now),
                Status::AwaitingCustomer => calendars.each(&mut after, |c, _| c.pause(now)),
                Status::InProgress => calendars.each(&mut after, |c, counting| c.resume(now, counting)),
                Status::Closed => after.row.closed_at = Some(now),
                Status::Reopened => {
                    let resolved = after.row.resolved_at.unwrap_or(now);
                    let window = Duration::days(after.row.reopen_window_days.into());
                    if now > resolved + window {
                        return Err(ApiError::rule(
                            "to",
                            "reopen_window",
                            format!(
                                "the reopen window of {} days after resolution has passed; log a new complaint",
                                after.row.reopen_window_days
                            ),
                        ));
                    }
                    after.row.reopen_count += 1;
                    after.row.cycle += 1;
                    after.row.closed_at = None;
                    calendars.each(&mut after, |c, counting| {
                        if c.metric == Metric::Resolution {
                            c.rearm(now, counting);
                        }
                    });
                    after.resolution = None;
                    after.satisfaction = None;
                }
                Status::New | Status::Resolved => {}
            }
            after.row.status = to;
            if let Some(note) = note {
                add_comment(conn, &writer, &after, Visibility::Internal, note.into_inner(), None).await?;
            }
            write::save(conn, &writer, locked, after, STATUS_CHANGED).await
        })
        .await?;
    Ok(respond(&saved))
}

/// Comment on a complaint. The first public comment by a staff user fulfils the
/// first-response clock; internal notes do not.
#[utoipa::path(
    tag = "complaints",
    request_body(content = NewComment, example = json!({"visibility": "public", "body": "We are sorry; a replacement pair is on its way."})),
    responses(
        (status = 201, description = "Added", body = Comment),
        (status = 409, description = "`answer_id` names no standard answer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints/{id}/comments")]
async fn post_comment(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<NewComment>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let by_staff = matches!(caller.principal, Principal::User { .. });
    let added = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let locked = write::lock::<ComplaintRecord>(conn, &writer, id, &if_match).await?;
            let comment = add_comment(
                conn,
                &writer,
                locked.row(),
                b.visibility,
                b.body.into_inner(),
                b.answer_id,
            )
            .await?;
            let responds = b.visibility == Visibility::Public
                && by_staff
                && locked.row().row.first_response_at.is_none();
            if responds {
                let mut after = locked.to_change();
                let calendars = Calendars::of(conn, &after.clocks).await?;
                first_response(&mut after, &calendars, comment.created_at);
                write::save(conn, &writer, locked, after, RESPONDED).await?;
            }
            Ok(comment)
        })
        .await?;
    Ok(HttpResponse::Created().json(added))
}

#[derive(Serialize, Deserialize)]
struct CommentCursor(DateTime<Utc>, Uuid);

/// A complaint's comments, oldest first.
#[utoipa::path(tag = "complaints", params(PageParams), responses((status = 200, body = Page<Comment>)))]
#[get("/complaints/{id}/comments")]
async fn list_comments(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    page: Query<PageParams>,
) -> ApiResult<web::Json<Page<Comment>>> {
    let id = ComplaintId::from(*id);
    complaints::table
        .find(id)
        .select(complaints::id)
        .first::<ComplaintId>(&mut conn)
        .await?;
    let window = page.window::<CommentCursor>()?;
    let mut query = complaint_comments::table
        .filter(complaint_comments::complaint_id.eq(id))
        .select(Comment::as_select())
        .order((complaint_comments::created_at, complaint_comments::id))
        .limit(window.fetch())
        .into_boxed();
    if let Some(CommentCursor(at, last)) = window.after {
        query = query.filter(past(
            complaint_comments::created_at,
            complaint_comments::id,
            (at, last),
            Direction::Ascending,
        ));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(
        window.page(rows, |c| CommentCursor(c.created_at, c.id)),
    ))
}

/// Resolve a complaint: the resolution (with its root cause and corrective action) and an
/// optional compensation in one transaction; `complaint.resolved` is the signal to send the
/// satisfaction survey.
#[utoipa::path(
    tag = "complaints",
    request_body(content = ResolveRequest, example = json!({
        "resolution": {"type": "replace", "description": "Sent a new pair", "root_cause_category": "supplier",
            "root_cause": "Glue batch 2611 from the sole supplier", "corrective_action": "Batch recalled; incoming checks on glue strength"},
        "compensation": {"kind": "gift", "description": "Shoe-care kit"}
    })),
    responses(
        (status = 200, body = Complaint, headers(("ETag" = String))),
        (status = 409, description = "The complaint cannot be resolved from its status (`allowed` lists the moves it can make), or points cannot be credited", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints/{id}/resolve")]
async fn resolve(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    registry: web::Data<Registry>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<ResolveRequest>,
) -> ApiResult<HttpResponse> {
    let ResolveRequest {
        resolution: r,
        compensation,
    } = body.0;
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let saved = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let locked = write::lock::<ComplaintRecord>(conn, &writer, id, &if_match).await?;
            ensure_move("a complaint", locked.row().row.status, Status::Resolved)?;
            let now = Utc::now();
            if let Some(CompensationInput::Points {
                points,
                description,
            }) = &compensation
            {
                let row = &locked.row().row;
                let grant = PointsGrant {
                    customer: row.customer_id,
                    points: points.get(),
                    reason: format!("complaint compensation: {}", description.as_str()),
                    reference: format!("complaint:{}:{}", row.id, row.cycle),
                    field: "compensation.kind",
                };
                registry.credit_points(conn, &writer, grant).await?;
            }
            let mut after = locked.to_change();
            let (actor_type, actor_id) = writer.actor().parts();
            let resolution = Resolution {
                complaint_id: id,
                cycle: after.row.cycle,
                resolution_type: r.resolution_type,
                description: r.description.into_inner(),
                root_cause_category: r.root_cause_category,
                root_cause: r.root_cause.into_inner(),
                corrective_action: r.corrective_action.into_inner(),
                compensation_kind: compensation.as_ref().map(CompensationInput::kind),
                compensation_points: compensation.as_ref().and_then(CompensationInput::points),
                compensation_description: compensation.map(CompensationInput::into_description),
                resolved_by_type: actor_type.to_owned(),
                resolved_by_id: actor_id,
                created_at: now,
            };
            let stored: Resolution = diesel::insert_into(complaint_resolutions::table)
                .values(&resolution)
                .returning(Resolution::as_returning())
                .get_result(conn)
                .await?;
            let calendars = Calendars::of(conn, &after.clocks).await?;
            // The resolution answers the customer too, if nothing had yet.
            first_response(&mut after, &calendars, now);
            calendars.each(&mut after, |clock, counting| clock.fulfil(now, counting));
            after.row.status = Status::Resolved;
            after.row.resolved_at = Some(now);
            after.resolution = Some(stored);
            write::save(conn, &writer, locked, after, RESOLVED).await
        })
        .await?;
    Ok(respond(&saved))
}

/// This cycle's resolution.
#[utoipa::path(tag = "complaints", responses((status = 200, body = Resolution)))]
#[get("/complaints/{id}/resolution")]
async fn get_resolution(
    _: Authorized<ComplaintsRead>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<web::Json<Resolution>> {
    let id = ComplaintId::from(*id);
    let cycle: i32 = complaints::table
        .find(id)
        .select(complaints::cycle)
        .first(&mut conn)
        .await?;
    let found: Option<Resolution> = complaint_resolutions::table
        .find((id, cycle))
        .select(Resolution::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    found
        .map(web::Json)
        .ok_or_else(|| ApiError::NotFound("the complaint is not resolved in this cycle".into()))
}

/// Record the customer's rating of the resolution: once per resolution cycle, after it is
/// resolved (a reopen starts a new cycle).
#[utoipa::path(
    tag = "complaints",
    request_body(content = NewRating, example = json!({"rating": 4, "comment": "Quick and friendly"})),
    responses(
        (status = 201, description = "Recorded", body = Satisfaction),
        (status = 409, description = "Not resolved yet, or this cycle is already rated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/complaints/{id}/satisfaction")]
async fn rate(
    caller: Authorized<ComplaintsWrite>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
    body: ValidJson<NewRating>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let writer = Writer::of(&caller.principal);
    let id = ComplaintId::from(*id);
    let stored = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let record = ComplaintRecord::lock(conn, id).await?;
            if !matches!(record.row.status, Status::Resolved | Status::Closed) {
                return Err(ApiError::Conflict(format!(
                    "a complaint that is {} has no resolution to rate yet",
                    record.row.status
                )));
            }
            if record.satisfaction.is_some() {
                return Err(ApiError::Conflict(
                    "this resolution is already rated; a reopened complaint can be rated again after its next resolution".into(),
                ));
            }
            let rating = Satisfaction {
                complaint_id: id,
                cycle: record.row.cycle,
                rating: b.rating.get() as i32,
                comment: present(b.comment),
                created_at: Utc::now(),
            };
            let stored: Satisfaction = diesel::insert_into(complaint_satisfaction::table)
                .values(&rating)
                .returning(Satisfaction::as_returning())
                .get_result(conn)
                .await?;
            let data = json!({"complaint_id": id, "satisfaction": stored});
            Entry {
                subject: subject(&record),
                event_type: "complaint.satisfaction_recorded".into(),
                audit_action: "satisfaction_recorded",
            }
            .record(conn, &writer, json!({"satisfaction": {"old": null, "new": stored}}), data)
            .await?;
            Ok(stored)
        })
        .await?;
    Ok(HttpResponse::Created().json(stored))
}
