//! Members: a customer using a shop's or brand's app. `POST /member-tokens` (the app's backend
//! or the shop, with a key holding `members:token`) exchanges a customer's id for a
//! short-lived member token; with it the app reads and changes the customer's own profile at
//! `/me`. A member sees their own contact data and consents, never the staff's view of them
//! (owner, tier, ladder level, tags, attributes, notes): [`MemberProfile`] is its own type.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fields::{ConsentChanges, CustomerFields};
use super::queries;
use super::{Address, Consents, CustomerRow, Gender};
use crate::auth::{AuthState, Authorized, Me, MemberTokens};
use crate::db::DbConn;
use crate::db::shared_reads::SharedRead;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::etag::{IfMatch, versioned};
use crate::http::json::{Field, ValidJson, Validated};
use crate::kit::ids::CustomerId;
use crate::kit::input::{Email, Items, Phone, Text};
use crate::kit::write::Writer;

crate::routes!(issue_token, profile, update_profile);

/// Body of `POST /member-tokens`.
#[derive(Debug, Deserialize, ToSchema, validator::Validate)]
#[serde(deny_unknown_fields)]
pub struct MemberTokenRequest {
    /// The customer the app acts for: live, not merged away, not erased.
    pub customer_id: CustomerId,
}

/// A member token: a bearer token for `/me` only.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberToken {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until it expires (`RAPPORT_MEMBER_TOKEN_TTL`, default one hour).
    #[schema(example = 3600)]
    pub expires_in: u64,
}

/// A member's own profile: what the customer may see and change of themselves.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberProfile {
    pub id: CustomerId,
    #[schema(example = "Wang Li")]
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub addresses: Vec<Address>,
    pub gender: Option<Gender>,
    pub birthday: Option<NaiveDate>,
    pub consents: Consents,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CustomerRow> for MemberProfile {
    fn from(row: CustomerRow) -> Self {
        let customer = super::Customer::from(row);
        Self {
            id: customer.id,
            display_name: customer.display_name,
            given_name: customer.given_name,
            family_name: customer.family_name,
            phones: customer.phones,
            emails: customer.emails,
            addresses: customer.addresses,
            gender: customer.gender,
            birthday: customer.birthday,
            consents: customer.consents,
            created_at: customer.created_at,
            updated_at: customer.updated_at,
        }
    }
}

/// Body of `PATCH /me` (merge patch): the member's contact fields and consents. Anything else
/// (tier, level, owner, tags, attributes, notes) is the staff's and refused with `422`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MemberFields {
    /// 1 to 200 characters; never `null`.
    pub display_name: Field<Text<1, 200>>,
    #[schema(nullable)]
    pub given_name: Field<Text<0, 100>>,
    #[schema(nullable)]
    pub family_name: Field<Text<0, 100>>,
    #[schema(nullable)]
    pub phones: Field<Items<Phone, 0, 10>>,
    #[schema(nullable)]
    pub emails: Field<Items<Email, 0, 10>>,
    #[schema(nullable)]
    pub addresses: Field<Items<Address, 0, 10>>,
    #[schema(value_type = Option<ConsentChanges>)]
    pub consents: Field<ConsentChanges>,
}

impl From<MemberFields> for CustomerFields {
    fn from(m: MemberFields) -> Self {
        Self {
            display_name: m.display_name,
            given_name: m.given_name,
            family_name: m.family_name,
            phones: m.phones,
            emails: m.emails,
            addresses: m.addresses,
            consents: m.consents,
            ..Self::default()
        }
    }
}

/// Checked (and normalised) as the customer's own fields are.
impl Validated for MemberFields {
    fn validated(self) -> Result<Self, Vec<FieldError>> {
        let c = CustomerFields::from(self).validated()?;
        Ok(Self {
            display_name: c.display_name,
            given_name: c.given_name,
            family_name: c.family_name,
            phones: c.phones,
            emails: c.emails,
            addresses: c.addresses,
            consents: c.consents,
        })
    }
}

/// The customer a member acts for, if they may still: live, not merged away, not erased.
async fn may_be_member(conn: &AsyncPgConnection, id: CustomerId) -> ApiResult<Option<CustomerRow>> {
    match queries::find_live(conn, id).await {
        Ok(row) => Ok(Some(row).filter(|row| row.erased_at.is_none())),
        Err(ApiError::NotFound(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The member's customer as stored: `401` once they are deleted, merged away or erased, so
/// their tokens stop working at once.
pub async fn current(conn: &AsyncPgConnection, me: &Me) -> ApiResult<CustomerRow> {
    may_be_member(conn, me.customer).await?.ok_or_else(|| {
        ApiError::Unauthorized("the member token's customer is no longer there".into())
    })
}

/// Issue a member token for a customer: the token a shop's or brand's app sends on `/me`.
/// Its backend calls this with an API key holding `members:token` (or staff do).
#[utoipa::path(
    tag = "members",
    request_body = MemberTokenRequest,
    responses(
        (status = 201, description = "Issued", body = MemberToken),
        (status = 409, description = "customer_id names no live customer", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/member-tokens")]
async fn issue_token(
    _: Authorized<MemberTokens>,
    conn: DbConn,
    auth: web::Data<AuthState>,
    body: ValidJson<MemberTokenRequest>,
) -> ApiResult<HttpResponse> {
    let customer = body.0.customer_id;
    if may_be_member(&conn, customer).await?.is_none() {
        return Err(ApiError::rule(
            "customer_id",
            "not_found",
            "names no live customer (deleted, merged away and erased customers get no token)",
        ));
    }
    let token = auth
        .keys
        .issue_member(customer)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Created().json(MemberToken {
        access_token: token,
        token_type: "Bearer",
        expires_in: auth.keys.member_ttl().as_secs(),
    }))
}

/// The member's own profile.
#[utoipa::path(tag = "members", responses((status = 200, body = MemberProfile, headers(("ETag" = String)))))]
#[get("/me")]
async fn profile(me: Me, read: SharedRead) -> ApiResult<HttpResponse> {
    // The shared connection, as `GET /customers/{id}` reads the same row.
    let row = read.run(async |conn| current(conn, &me).await).await?;
    let version = row.version;
    Ok(versioned(
        StatusCode::OK,
        &MemberProfile::from(row),
        version,
    ))
}

/// Change the member's own contact fields and consents (merge patch; `If-Match` honoured).
#[utoipa::path(tag = "members", request_body = MemberFields, responses((status = 200, body = MemberProfile, headers(("ETag" = String)))))]
#[patch("/me")]
async fn update_profile(
    me: Me,
    mut conn: DbConn,
    if_match: IfMatch,
    body: ValidJson<MemberFields>,
) -> ApiResult<HttpResponse> {
    current(&conn, &me).await?;
    let (writer, id, fields) = (Writer::of(&me.principal), me.customer, body.0);
    let row = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            queries::patch(conn, &writer, id, &if_match, fields.into()).await
        })
        .await?;
    let version = row.version;
    Ok(versioned(
        StatusCode::OK,
        &MemberProfile::from(row),
        version,
    ))
}
