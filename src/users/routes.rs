//! `/api/v1/users`: admins manage staff accounts.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::{DisplayName, NewUser, Password, User, UserRow, create_user};
use crate::auth::routes::Me;
use crate::auth::{AdminOnly, AuthState, Authorized, Principal, Role, passwords};
use crate::db::DbConn;
use crate::db::schema::{refresh_tokens, users};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::etag::{IfMatch, created, versioned};
use crate::http::json::{Field, ValidJson};
use crate::http::pagination::{Page, PageParams};
use crate::http::query::Query;
use crate::kit::ids::UserId;
use crate::kit::input::TimeZoneName;
use crate::kit::write::{self, Action, Writer};

crate::routes!(create, list, get_one, update, update_me);

/// Body of `PATCH /users/{id}`: absent fields stay as they are.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// A new password; signs the user out everywhere.
    #[validate(nested)]
    pub password: Option<Password>,
    /// Who the user reports to (an active user other than themselves); `null` clears it.
    #[serde(default)]
    #[schema(nullable)]
    pub manager_id: Field<UserId>,
    /// The zone the user's day is planned in (their visit boards).
    #[validate(nested)]
    pub time_zone: Option<TimeZoneName>,
    /// The name the user goes by; `null` clears it.
    #[serde(default)]
    #[schema(nullable)]
    #[validate(nested)]
    pub display_name: Field<DisplayName>,
}

/// Body of `PATCH /auth/me`: a user changes their own profile; absent fields stay as they
/// are. Role, activity and manager are an admin's to change (`PATCH /users/{id}`).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// The zone the user's day is planned in (their visit boards).
    #[validate(nested)]
    pub time_zone: Option<TimeZoneName>,
    /// The name the user goes by; `null` clears it.
    #[serde(default)]
    #[schema(nullable)]
    #[validate(nested)]
    pub display_name: Field<DisplayName>,
    /// A new password; needs `current_password`, and signs the user out everywhere else
    /// (every refresh token is revoked).
    #[validate(nested)]
    pub password: Option<Password>,
    /// The password the user signs in with now: required with `password`.
    #[schema(value_type = Option<String>, format = Password)]
    pub current_password: Option<String>,
}

/// Filters of `GET /users`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilters {
    /// Only users with this role.
    pub role: Option<Role>,
    /// Only active (`true`) or inactive (`false`) users.
    pub active: Option<bool>,
}

/// Create a staff user.
#[utoipa::path(
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = User,
         headers(("Location" = String, description = "URL of the new user"), ("ETag" = String))),
        (status = 409, description = "E-mail already taken", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users")]
async fn create(
    caller: Authorized<AdminOnly>,
    mut conn: DbConn,
    body: ValidJson<NewUser>,
) -> ApiResult<HttpResponse> {
    let writer = Writer::of(&caller.principal);
    let row = create_user(&mut conn, &writer, body.0).await?;
    let version = row.version;
    Ok(created(
        format!("/api/v1/users/{}", row.id),
        &User::from(row),
        version,
    ))
}

/// List staff users, oldest first.
#[utoipa::path(tag = "users", params(PageParams, UserFilters), responses((status = 200, body = Page<User>)))]
#[get("/users")]
async fn list(
    _: Authorized<AdminOnly>,
    mut conn: DbConn,
    page: Query<PageParams>,
    filters: Query<UserFilters>,
) -> ApiResult<web::Json<Page<User>>> {
    let window = page.window::<Uuid>()?;
    let mut query = users::table
        .select(UserRow::as_select())
        .order(users::id)
        .limit(window.fetch())
        .into_boxed();
    if let Some(after) = window.after {
        query = query.filter(users::id.gt(after));
    }
    if let Some(role) = filters.role {
        query = query.filter(users::role.eq(role.as_str()));
    }
    if let Some(active) = filters.active {
        query = query.filter(users::active.eq(active));
    }
    let rows = query.load(&mut conn).await?;
    Ok(web::Json(window.page(rows, |u| u.id).map(User::from)))
}

/// Get a staff user.
#[utoipa::path(
    tag = "users",
    responses(
        (status = 200, body = User, headers(("ETag" = String))),
    )
)]
#[get("/users/{id}")]
async fn get_one(
    _: Authorized<AdminOnly>,
    mut conn: DbConn,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let row: UserRow = users::table
        .find(*id)
        .select(UserRow::as_select())
        .first(&mut conn)
        .await?;
    let version = row.version;
    Ok(versioned(StatusCode::OK, &User::from(row), version))
}

/// Change a user's role, activate or deactivate them, or set a new password.
#[utoipa::path(
    tag = "users",
    request_body = UserPatch,
    responses(
        (status = 200, body = User, headers(("ETag" = String))),
        (status = 409, description = "Would leave no active admin, or demote yourself", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/users/{id}")]
async fn update(
    caller: Authorized<AdminOnly>,
    mut conn: DbConn,
    auth: web::Data<AuthState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ValidJson<UserPatch>,
) -> ApiResult<HttpResponse> {
    let id = UserId::from(*id);
    let row = apply_change(&mut conn, &caller.principal, id, &if_match, body.0).await?;
    auth.forget_user(row.id);
    let version = row.version;
    Ok(versioned(StatusCode::OK, &User::from(row), version))
}

/// Change your own profile: time zone, display name, and password (with the current one,
/// which also signs you out of every other session). API keys have no profile (`403`).
#[utoipa::path(
    tag = "auth",
    request_body = ProfilePatch,
    responses(
        (status = 200, body = Me, headers(("ETag" = String))),
        (status = 403, description = "An API key has no profile to change", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid, `current_password` is missing with `password`, or it is not the password", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/auth/me")]
async fn update_me(
    principal: Principal,
    mut conn: DbConn,
    auth: web::Data<AuthState>,
    if_match: IfMatch,
    body: ValidJson<ProfilePatch>,
) -> ApiResult<HttpResponse> {
    let id = match principal {
        Principal::User { id, .. } => id,
        Principal::ApiKey { .. } => {
            return Err(ApiError::Forbidden(
                "an API key has no profile; its name and scopes are an admin's to change".into(),
            ));
        }
        Principal::Member { .. } => {
            return Err(ApiError::Forbidden(
                "a member changes their profile with `PATCH /me`".into(),
            ));
        }
    };
    let ProfilePatch {
        time_zone,
        display_name,
        password,
        current_password,
    } = body.0;
    if password.is_some() {
        let Some(current) = current_password else {
            return Err(ApiError::invalid(
                "current_password",
                "required",
                "a new password needs the current one",
            ));
        };
        let stored: String = users::table
            .find(id)
            .select(users::password_hash)
            .first(&mut conn)
            .await?;
        if !passwords::verify(current, Some(stored)).await {
            return Err(ApiError::invalid(
                "current_password",
                "mismatch",
                "this is not your current password",
            ));
        }
    }
    let patch = UserPatch {
        role: None,
        active: None,
        password,
        manager_id: Field::Absent,
        time_zone,
        display_name,
    };
    let row = apply_change(&mut conn, &principal, id, &if_match, patch).await?;
    auth.forget_user(row.id);
    let version = row.version;
    let me = Me::User {
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        role: row.role,
        active: row.active,
        time_zone: row.time_zone,
    };
    Ok(versioned(StatusCode::OK, &me, version))
}

/// Applies a patch through the write path, enforcing If-Match and the admin rules; a new
/// password or a deactivation signs the user out everywhere.
async fn apply_change(
    conn: &mut DbConn,
    caller: &Principal,
    id: UserId,
    if_match: &IfMatch,
    patch: UserPatch,
) -> ApiResult<UserRow> {
    let password_hash = match patch.password {
        Some(password) => Some(passwords::hash(password.into_inner()).await?),
        None => None,
    };
    let writer = Writer::of(caller);
    let (row, ()) = write::change(
        conn,
        &writer,
        id,
        if_match,
        Action::UPDATED,
        async |conn, after: &mut UserRow| {
            // Whether the user is an active admin before this change.
            let was_active_admin = after.role == Role::Admin && after.active;
            if let Some(role) = patch.role {
                after.role = role;
            }
            after.active = patch.active.unwrap_or(after.active);
            if let Some(zone) = patch.time_zone {
                after.time_zone = zone.into_inner();
            }
            match patch.display_name {
                Field::Absent => {}
                Field::Null => after.display_name = None,
                Field::Value(name) => after.display_name = Some(name.into_inner()),
            }
            match patch.manager_id {
                Field::Absent => {}
                Field::Null => after.manager_id = None,
                Field::Value(manager) if manager == id => {
                    return Err(ApiError::rule(
                        "manager_id",
                        "self",
                        "a user cannot manage themselves",
                    ));
                }
                Field::Value(manager) => {
                    let active: Option<bool> = users::table
                        .find(manager)
                        .select(users::active)
                        .first(conn)
                        .await
                        .optional()?;
                    if active != Some(true) {
                        return Err(ApiError::rule(
                            "manager_id",
                            "not_found",
                            "no such active user",
                        ));
                    }
                    after.manager_id = Some(manager);
                }
            }
            let loses_admin = was_active_admin && (after.role != Role::Admin || !after.active);
            if loses_admin {
                if caller.user_id() == Some(id) {
                    return Err(ApiError::Conflict(
                        "you cannot demote or deactivate yourself".into(),
                    ));
                }
                let other_admins: i64 = users::table
                    .filter(users::role.eq("admin"))
                    .filter(users::active.eq(true))
                    .filter(users::id.ne(id))
                    .count()
                    .get_result(conn)
                    .await?;
                if other_admins == 0 {
                    return Err(ApiError::Conflict("this is the last active admin".into()));
                }
            }
            let signs_out = !after.active || password_hash.is_some();
            if let Some(hash) = password_hash {
                after.password_hash = hash;
                after.password_changed_at = Some(Utc::now());
            }
            if signs_out {
                diesel::update(refresh_tokens::table)
                    .filter(refresh_tokens::user_id.eq(id))
                    .filter(refresh_tokens::revoked_at.is_null())
                    .set(refresh_tokens::revoked_at.eq(Utc::now()))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(row)
}
