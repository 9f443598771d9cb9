//! Staff users: admins, managers and agents who sign in to the back office.

pub mod routes;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::{Role, passwords};
use crate::db::schema::users;
use crate::error::{ApiError, ApiResult};
use crate::kit::ids::UserId;
use crate::kit::input::{Email, Secret, Text, TimeZoneName};
use crate::kit::write::{self, Action, Versioned, Writer};

/// A user row. The password hash is never serialised (so never audited or announced) and
/// not debug-printed.
#[derive(Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Audited instead of the hash.
    pub password_changed_at: Option<DateTime<Utc>>,
    pub manager_id: Option<UserId>,
    pub time_zone: String,
    pub display_name: Option<String>,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Versioned for UserRow {
    const KIND: &'static str = "user";
    type Id = UserId;

    crate::versioned_columns!(id: id, version: version, updated_at: updated_at);

    fn view(&self) -> serde_json::Value {
        serde_json::to_value(User::from(self.clone())).unwrap_or_default()
    }

    async fn lock(conn: &mut AsyncPgConnection, id: UserId) -> ApiResult<Self> {
        Ok(users::table
            .find(id)
            .select(UserRow::as_select())
            .for_update()
            .first(conn)
            .await?)
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        diesel::insert_into(users::table)
            .values((
                users::id.eq(self.id),
                users::email.eq(&self.email),
                users::password_hash.eq(&self.password_hash),
                users::role.eq(&self.role),
                users::password_changed_at.eq(self.password_changed_at),
                users::time_zone.eq(&self.time_zone),
                users::display_name.eq(&self.display_name),
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

    async fn update(&self, conn: &mut AsyncPgConnection) -> ApiResult<Self> {
        Ok(diesel::update(users::table.find(self.id))
            .set((
                users::role.eq(&self.role),
                users::active.eq(self.active),
                users::password_hash.eq(&self.password_hash),
                users::password_changed_at.eq(self.password_changed_at),
                users::manager_id.eq(self.manager_id),
                users::time_zone.eq(&self.time_zone),
                users::display_name.eq(&self.display_name),
                users::version.eq(self.version),
                users::updated_at.eq(self.updated_at),
            ))
            .returning(UserRow::as_returning())
            .get_result(conn)
            .await?)
    }
}

/// A staff user as the API shows it (never with a password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: UserId,
    #[schema(example = "ana@example.com")]
    pub email: String,
    /// The name the user goes by, as they or an admin set it; `null` until set.
    #[schema(example = "Ana Lima")]
    pub display_name: Option<String>,
    pub role: Role,
    /// Inactive users cannot sign in and their tokens stop working.
    pub active: bool,
    /// Who the user reports to: told by complaint escalation steps for "the assignee's
    /// manager".
    pub manager_id: Option<UserId>,
    /// The IANA zone the user's day is planned in: their visit boards are drawn in it.
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            role: row.role,
            active: row.active,
            manager_id: row.manager_id,
            time_zone: row.time_zone,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[validate(nested)]
    pub email: Email,
    #[validate(nested)]
    pub password: Password,
    pub role: Role,
    /// The zone the user's day is planned in. Default: `UTC`.
    #[validate(nested)]
    pub time_zone: Option<TimeZoneName>,
    /// The name the user goes by.
    #[validate(nested)]
    pub display_name: Option<DisplayName>,
}

/// A person's name as shown beside their e-mail: 1 to 200 characters.
pub type DisplayName = Text<1, 200>;

/// A new password: 10 to 128 characters, taken exactly as typed.
pub type Password = Secret<10, { passwords::PASSWORD_MAX }>;

/// `409` (a rule on `field`) unless the user exists and is active: for a request that names
/// a user to assign, to own or to come along.
pub async fn ensure_active(
    conn: &mut AsyncPgConnection,
    field: &str,
    user: UserId,
) -> ApiResult<()> {
    let active: Option<bool> = users::table
        .find(user)
        .select(users::active)
        .first(conn)
        .await
        .optional()?;
    match active {
        Some(true) => Ok(()),
        Some(false) => Err(ApiError::rule(field, "inactive", "the user is deactivated")),
        None => Err(ApiError::rule(field, "not_found", "no such user")),
    }
}

/// Creates a user; `409` when the e-mail is taken (compared case-insensitively).
pub async fn create_user(
    conn: &mut AsyncPgConnection,
    writer: &Writer,
    new: NewUser,
) -> ApiResult<UserRow> {
    let hash = passwords::hash(new.password.into_inner()).await?;
    let now = Utc::now();
    let row = UserRow {
        id: UserId::new(),
        email: new.email.into_inner(),
        password_hash: hash,
        role: new.role,
        active: true,
        version: 1,
        created_at: now,
        updated_at: now,
        password_changed_at: Some(now),
        manager_id: None,
        time_zone: new
            .time_zone
            .map_or_else(|| "UTC".to_owned(), TimeZoneName::into_inner),
        display_name: new.display_name.map(DisplayName::into_inner),
    };
    write::create(conn, writer, row, Action::CREATED).await
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
        email: email.to_owned().into(),
        password: password.to_owned().into(),
        role: Role::Admin,
        time_zone: None,
        display_name: None,
    };
    new.validate()
        .map_err(|e| ApiError::Validation(crate::http::json::field_errors(&e)))?;
    create_user(conn, &Writer::system(), new).await?;
    Ok(true)
}

/// The events staff accounts record: kept inside (the audit log), never delivered.
pub fn event_types() -> Vec<crate::kit::event_types::EventType> {
    use crate::kit::event_types::EventType;
    use crate::kit::schema_part::SchemaPart;
    vec![
        EventType::internal(
            "user.created",
            "A staff user was created.",
            SchemaPart::of::<User>,
        ),
        EventType::internal(
            "user.updated",
            "A staff user was changed.",
            SchemaPart::of::<User>,
        ),
    ]
}
