//! State machines of a domain's records (a complaint's status, a visit's): the domain states
//! which moves exist, the kit refuses the others the same way everywhere, with `409` and the
//! states that are reachable (`allowed`), so a client can offer exactly those.

use std::fmt::Display;

use crate::error::{ApiError, ApiResult};
use crate::text_enum::Enumerated;

/// A status with the moves it may make; `allowed` lists its states in declaration order.
pub trait Workflow: Enumerated + Copy + PartialEq + Display {
    /// Whether a record in this state may move to `next`.
    fn may_become(self, next: Self) -> bool;

    /// The states reachable from this one in one move.
    fn allowed(self) -> Vec<Self> {
        Self::ALL
            .iter()
            .copied()
            .filter(|next| self.may_become(*next))
            .collect()
    }
}

/// The [`Workflow`] impl of a status from its legal moves as a pattern over
/// `(from, to)`, the status's variants in scope:
/// `workflow!(Status: (New, Acknowledged) | (Acknowledged, InProgress));`.
#[macro_export]
macro_rules! workflow {
    ($(#[$meta:meta])* $status:ident: $moves:pat) => {
        impl $crate::kit::workflow::Workflow for $status {
            $(#[$meta])*
            fn may_become(self, next: Self) -> bool {
                #[allow(unused_imports)]
                use $status::*;
                matches!((self, next), $moves)
            }
        }
    };
}

/// `409` with the reachable states unless `from` may become `to`; `what` names the record
/// ("a complaint").
pub fn ensure_move<W: Workflow>(what: &str, from: W, to: W) -> ApiResult<()> {
    if from.may_become(to) {
        return Ok(());
    }
    let allowed: Vec<String> = from.allowed().iter().map(ToString::to_string).collect();
    let detail = match allowed.as_slice() {
        [] => format!("{what} that is {from} cannot change status"),
        _ => format!(
            "{what} that is {from} cannot become {to}; it may become {}",
            allowed.join(", ")
        ),
    };
    Err(ApiError::IllegalMove { detail, allowed })
}

/// Checks a workflow over every pair of states: exactly the `legal` moves are allowed, by
/// `may_become` and by [`ensure_move`] alike (the exhaustive unit test of each domain's
/// state machine).
#[cfg(test)]
pub fn assert_exactly<W: Workflow + std::fmt::Debug>(what: &str, legal: &[(W, W)]) {
    for &from in W::ALL {
        for &to in W::ALL {
            let expected = legal.contains(&(from, to));
            assert_eq!(from.may_become(to), expected, "{from} → {to}");
            assert_eq!(
                ensure_move(what, from, to).is_ok(),
                expected,
                "{from} → {to}"
            );
        }
    }
}
