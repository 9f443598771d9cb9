//! The domains in one place: those that hold data about a customer with their hooks
//! (timeline, merge, export, erase), from which the app serves the customer and the OpenAPI
//! document composes its timeline and export schemas; every domain's tables; every event
//! type. A new domain adds its line to each list that concerns it.

use crate::kit::event_types::{Catalogue, EventType};
use crate::kit::registry::Registry;

/// Every domain that holds data about a customer, with its hooks: a new domain adds its
/// line here.
pub fn registry() -> Registry {
    Registry::new(vec![
        crate::orders::customer_hooks(),
        crate::complaints::customer_hooks(),
        crate::visits::customer_hooks(),
        crate::club::customer_hooks(),
        crate::kit::registry::history_hooks(),
    ])
}

/// Every event type the outbox records, from every domain, with the schema of its data:
/// the document's `webhooks`.
pub fn event_types() -> Vec<EventType> {
    [
        crate::customers::event_types(),
        crate::orders::event_types(),
        crate::complaints::event_types(),
        crate::visits::event_types(),
        crate::club::event_types(),
        crate::webhooks::event_types(),
        crate::users::event_types(),
        crate::api_keys::event_types(),
    ]
    .concat()
}

/// The names of every event type: what webhooks may subscribe to, what the change feed
/// names, what the outbox may record.
pub fn catalogue() -> Catalogue {
    Catalogue::new(&event_types())
}

/// Every domain folder of `src/` with the tables it owns (the kit owns the rest: users, keys,
/// tokens, the audit log, the outbox, idempotency keys). The architecture tests read each
/// folder's source against this list.
pub fn owned_tables() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("customers", &crate::customers::TABLES),
        ("orders", &crate::orders::TABLES),
        ("complaints", &crate::complaints::TABLES),
        ("visits", &crate::visits::TABLES),
        ("club", &crate::club::TABLES),
        ("webhooks", &crate::webhooks::TABLES),
        ("changes", &[]),
    ]
}
