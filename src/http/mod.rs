//! Cross-cutting HTTP plumbing shared by every domain.

pub mod etag;
pub mod fallback;
pub mod idempotency;
pub mod json;
pub mod metrics;
pub mod observe;
pub mod pagination;
pub mod query;
pub mod rate_limit;
pub mod security;
pub mod sorting;
pub mod timestamps;

/// A module's `configure`, which registers its handlers with the app (and so with the
/// OpenAPI document): `routes!(create, list, get_one, update);`.
#[macro_export]
macro_rules! routes {
    ($($handler:ident),+ $(,)?) => {
        /// Registers the routes.
        pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
            $(cfg.service($handler);)+
        }
    };
}
