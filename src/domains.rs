//! The domains that hold data about a customer, in one list: the app serves their hooks
//! (timeline, merge, export, erase) and the OpenAPI document composes the customer's
//! timeline and export schemas from the same list.

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
