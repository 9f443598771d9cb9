//! Typed ids: a customer's id and a user's are both UUIDs, but one cannot be passed where
//! the other is expected. Each is stored as `uuid`, sent as the UUID string, and documented
//! as a schema component of its own (`CustomerId`).
//!
//! ```compile_fail
//! use rapport::kit::ids::{CustomerId, UserId};
//! fn assign(_owner: UserId) {}
//! assign(CustomerId::new()); // a customer's id is not a user's
//! ```
//!
//! ```
//! use rapport::kit::ids::{ApiKeyId, UserId};
//! fn assign(_owner: UserId) {}
//! assign(UserId::new());
//! let _key: ApiKeyId = uuid::Uuid::now_v7().into(); // from the database or a path
//! ```

/// Declares a typed id: `typed_id! { /// doc  pub struct CustomerId; }`.
#[macro_export]
macro_rules! typed_id {
    ($(#[$meta:meta])* pub struct $name:ident;) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new id (UUID v7, time-ordered).
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// The UUID itself.
            pub fn get(self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for uuid::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Uuid, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                <uuid::Uuid as diesel::deserialize::FromSql<diesel::sql_types::Uuid, diesel::pg::Pg>>::from_sql(bytes).map(Self)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Uuid, diesel::pg::Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
                <uuid::Uuid as diesel::serialize::ToSql<diesel::sql_types::Uuid, diesel::pg::Pg>>::to_sql(&self.0, out)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Uuid,
                    )))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        /// Valid once read, so lists of ids carry their limits as `Items`.
        impl validator::Validate for $name {
            fn validate(&self) -> Result<(), validator::ValidationErrors> {
                Ok(())
            }
        }
    };
}

crate::typed_id! {
    /// A customer's id.
    pub struct CustomerId;
}

crate::typed_id! {
    /// An order's id.
    pub struct OrderId;
}

crate::typed_id! {
    /// A staff user's id.
    pub struct UserId;
}

crate::typed_id! {
    /// An integration's API key id.
    pub struct ApiKeyId;
}

crate::typed_id! {
    /// A complaint's id.
    pub struct ComplaintId;
}

crate::typed_id! {
    /// A business calendar's id.
    pub struct CalendarId;
}

crate::typed_id! {
    /// An SLA policy's id.
    pub struct PolicyId;
}

crate::typed_id! {
    /// A standard answer's id.
    pub struct AnswerId;
}

crate::typed_id! {
    /// A visit's id.
    pub struct VisitId;
}

crate::typed_id! {
    /// A recurring visit plan's id.
    pub struct PlanId;
}

crate::typed_id! {
    /// A visit target's id.
    pub struct TargetId;
}

crate::typed_id! {
    /// A club membership's id.
    pub struct MemberId;
}

crate::typed_id! {
    /// A club tier's id.
    pub struct TierId;
}

crate::typed_id! {
    /// A points ledger entry's id.
    pub struct EntryId;
}

crate::typed_id! {
    /// An earning rule's id.
    pub struct RuleId;
}

crate::typed_id! {
    /// A reward's id.
    pub struct RewardId;
}

crate::typed_id! {
    /// A club event's id.
    pub struct ClubEventId;
}

crate::typed_id! {
    /// An event registration's id.
    pub struct RegistrationId;
}

crate::typed_id! {
    /// A referral's id.
    pub struct ReferralId;
}

crate::typed_id! {
    /// A webhook subscription's id.
    pub struct WebhookId;
}

crate::typed_id! {
    /// A webhook delivery's id.
    pub struct DeliveryId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_sent_and_documented_as_its_uuid() {
        let id = CustomerId::new();
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::json!(id.get().to_string())
        );
        let back: CustomerId = serde_json::from_value(serde_json::json!(id.to_string())).unwrap();
        assert_eq!(back, id);
        let schema = serde_json::to_value(<UserId as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(
            schema,
            serde_json::json!({"type": "string", "format": "uuid"})
        );
    }
}
