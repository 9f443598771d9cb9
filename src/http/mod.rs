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
pub mod timestamps;
