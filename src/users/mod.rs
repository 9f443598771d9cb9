//! Staff users: admins, managers and agents who sign in to the back office.

pub mod routes;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Role, passwords};
use crate::db::schema::users;
use crate::error::{ApiError, ApiResult};

/// A user row, without the password hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A staff user as the API shows it (never with a password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    #[schema(example = "ana@example.com")]
    pub email: String,
    pub role: Role,
    /// Inactive users cannot sign in and their tokens stop working.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            role: Role::parse(&row.role).unwrap_or(Role::Agent),
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[validate(email, length(max = 254))]
    #[schema(format = Email, max_length = 254, example = "ana@example.com")]
    pub email: String,
    /// 10 to 128 characters.
    #[validate(length(min = 10, max = 128))]
    #[schema(min_length = 10, max_length = 128, example = "a long passphrase")]
    pub password: String,
    pub role: Role,
}

/// Creates a user; `409` when the e-mail is taken (compared case-insensitively).
pub async fn create_user(conn: &mut AsyncPgConnection, new: NewUser) -> ApiResult<UserRow> {
    let hash = passwords::hash(new.password).await?;
    diesel::insert_into(users::table)
        .values((
            users::id.eq(Uuid::now_v7()),
            users::email.eq(new.email.trim()),
            users::password_hash.eq(hash),
            users::role.eq(new.role.as_str()),
        ))
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Conflict(_) => {
                ApiError::Conflict("a user with this e-mail already exists".into())
            }
            other => other,
        })
}

/// Creates the bootstrap admin if there is no user at all. Returns whether it did.
pub async fn bootstrap_admin(
    conn: &mut AsyncPgConnection,
    email: &str,
    password: &str,
) -> ApiResult<bool> {
    let existing: i64 = users::table.count().get_result(conn).await?;
    if existing > 0 {
        return Ok(false);
    }
    let new = NewUser {
        email: email.to_owned(),
        password: password.to_owned(),
        role: Role::Admin,
    };
    new.validate()
        .map_err(|e| ApiError::Validation(crate::http::json::field_errors(&e)))?;
    create_user(conn, new).await?;
    Ok(true)
}
