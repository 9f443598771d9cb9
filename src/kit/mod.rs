//! The domain kit: what every domain stands on, so that each domain module holds only its
//! routes, types and queries (docs/architecture.md, "Adding a domain").
//!
//! - [`write`]: the one write path (lock, `If-Match`, rights, diff, version, audit, event);
//! - [`outbox`]: the domain events it records (the `events` table), read by webhooks and the
//!   change feed;
//! - [`registry`]: how a domain plugs into the customer (timeline, merge, export, erase);
//! - [`workflow`]: status moves, refused alike everywhere (`409` with the allowed states).

pub mod audit;
pub mod documents;
pub mod event_types;
pub mod ids;
pub mod input;
mod money;
pub mod outbox;
pub mod registry;
pub mod rights;
pub mod schema_part;
pub mod workflow;
pub mod write;

pub use money::Money;
