//! Money as the API shows it everywhere: integer minor units and an ISO 4217 code.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An amount of money in minor units (cents, fen) with its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    #[schema(example = 1250)]
    pub amount_minor: i64,
    /// ISO 4217 code; `XXX` ("no currency") before the first purchase.
    #[schema(example = "CNY")]
    pub currency: String,
}
