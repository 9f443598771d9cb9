//! Enumerations stored as `text` with a CHECK constraint and sent as lower snake_case
//! strings. One macro gives each the same serde names, OpenAPI schema and conversions, and
//! makes it a column type: rows hold the enum itself, and a stored text that names no value
//! fails the query loudly (a logged `500`) instead of passing for some other value.

/// A text enumeration's values, for code generic over enums (a workflow's states).
pub trait Enumerated: Sized + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];
}

/// Declares a text enumeration: `text_enum! { /// doc  pub enum Level { Potential = "potential", ... } }`.
/// `pub enum Status as VisitStatus { ... }` names its schema component apart from another
/// domain's `Status`.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident $(as $schema:ident)? { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        $(#[schema(as = $schema)])?
        #[diesel(sql_type = diesel::sql_types::Text)]
        // utoipa does not see the per-variant renames below (a literal passed through a macro),
        // so the casing rule is stated once more where it can read it; a test in `openapi`
        // checks that the document's values are the serialised ones.
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored and serialised name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// The value with this name.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }

        }

        impl $crate::text_enum::Enumerated for $name {
            const ALL: &'static [Self] = <$name>::ALL;
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg>>::from_sql(bytes)?;
                Self::parse(&text).ok_or_else(|| {
                    format!("`{text}` is not a {} (the column holds a value this version does not know)", stringify!($name)).into()
                })
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(self.as_str(), out)
            }
        }

        /// Valid by construction (unknown names are refused while the body is read), so lists
        /// of the enum can carry their limits as `kit::input::Items`.
        impl validator::Validate for $name {
            fn validate(&self) -> Result<(), validator::ValidationErrors> {
                Ok(())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
