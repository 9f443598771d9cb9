//! Enumerations stored as `text` with a CHECK constraint and sent as lower snake_case
//! strings. One macro gives each the same serde names, OpenAPI schema and conversions.

/// Declares a text enumeration: `text_enum! { /// doc  pub enum Level { Potential = "potential", ... } }`.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
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

            /// The value read from a column the CHECK constraint keeps valid.
            pub fn from_column(text: &str) -> Self {
                Self::parse(text).unwrap_or(Self::ALL[0])
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
