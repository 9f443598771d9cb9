//! The request bodies and list filters of `/api/v1/complaints`, and the list's statement.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{
    Category, Channel, CompensationKind, ComplaintRow, ResolutionType, RootCause, Severity, Status,
    Visibility,
};
use crate::db::keyset::page_in;
use crate::db::like_pattern;
use crate::db::schema::complaints;
use crate::error::ApiResult;
use crate::http::json::Field;
use crate::http::query::{search_schema, search_term};
use crate::http::sorting::{CreationOrder, SortOrder};
use crate::kit::ids::{AnswerId, ComplaintId, CustomerId, OrderId, UserId};
use crate::kit::input::{Text, Whole};

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
    /// Points credited to the customer's club membership: a club write (keys need
    /// `club:write`; agents are capped by `goodwill_points_per_complaint`).
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
                "Points credited to the customer's club membership; `description` gives the reason. Granting points is a club write: an API key needs `club:write` besides `complaints:write` (`403` otherwise), and an agent grants at most the club setting `goodwill_points_per_complaint` (default 500) over all of a complaint's resolutions; managers and admins grant more.",
                true,
            ))
            .into()
    }
}

impl ToSchema for CompensationInput {}

impl CompensationInput {
    pub fn kind(&self) -> CompensationKind {
        match self {
            Self::Gift { .. } => CompensationKind::Gift,
            Self::Points { .. } => CompensationKind::Points,
        }
    }

    pub fn points(&self) -> Option<i32> {
        match self {
            Self::Points { points, .. } => Some(points.get() as i32),
            Self::Gift { .. } => None,
        }
    }

    pub fn into_description(self) -> String {
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
    /// The order: `-created_at` (newest first, the default) or `created_at` (oldest first).
    pub sort: Option<CreationOrder>,
}

impl ComplaintFilters {
    /// Whether the page walks one index and shows every row it reads, so that it is fast by
    /// construction and may share the read connection: no filter but the assignee (with or
    /// without the status: `complaints_status_assignee_idx`, `complaints_assignee_idx`), the
    /// customer (whose complaints are few), or none at all (`complaints_created_idx`).
    /// Destructured whole, so a new filter is not forgotten here.
    pub fn walks_one_index(&self) -> bool {
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
            sort: _,
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

/// The statement of a complaints list page.
pub type ListQuery = diesel::helper_types::IntoBoxed<
    'static,
    diesel::helper_types::Select<
        complaints::table,
        diesel::helper_types::AsSelect<ComplaintRow, diesel::pg::Pg>,
    >,
    diesel::pg::Pg,
>;

/// A page of `GET /complaints`: the rows after `after` matching the filters, in the filters'
/// order (public so that tests and benchmarks can `EXPLAIN` it).
pub fn list_query(
    f: &ComplaintFilters,
    after: Option<(DateTime<Utc>, ComplaintId)>,
    limit: i64,
    now: DateTime<Utc>,
) -> ApiResult<ListQuery> {
    let direction = f.sort.unwrap_or_default().direction();
    let mut query = page_in(
        complaints::table
            .select(ComplaintRow::as_select())
            .limit(limit)
            .into_boxed(),
        (complaints::created_at, complaints::id),
        after.map(|(at, id)| (at, id.get())),
        direction,
    );
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
