//! Per-principal rate limiting (GCRA, from `governor`) with the IETF `RateLimit-*` headers.
//! Unauthenticated requests and failed credentials are limited per client IP.

use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

type Limiter = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// The outcome of one check.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests allowed in a burst.
    pub limit: u32,
    /// Requests left in the current burst.
    pub remaining: u32,
    /// Time until the burst is fully available again (or, when refused, until the next request may pass).
    pub reset: Duration,
}

/// A keyed limiter; `None` inside when limiting is switched off.
pub struct RateLimiter {
    limiter: Option<Limiter>,
    quota: Option<Quota>,
}

impl RateLimiter {
    /// `per_minute` sustained with bursts of `burst`; `per_minute == 0` disables limiting.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let quota = NonZeroU32::new(per_minute).and_then(|rate| {
            let burst = NonZeroU32::new(burst.max(1))?;
            Quota::with_period(Duration::from_secs(60) / rate.get()).map(|q| q.allow_burst(burst))
        });
        Self {
            limiter: quota.map(|q| {
                governor::RateLimiter::keyed(q).with_middleware::<StateInformationMiddleware>()
            }),
            quota,
        }
    }

    /// Whether limiting is on (a rate was configured).
    pub fn is_enabled(&self) -> bool {
        self.limiter.is_some()
    }

    /// Counts one request against `key`; `None` when limiting is off.
    pub fn check(&self, key: &str) -> Option<Decision> {
        let (limiter, quota) = (self.limiter.as_ref()?, self.quota?);
        let limit = quota.burst_size().get();
        Some(match limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit,
                    remaining,
                    reset: quota.replenish_interval() * (limit - remaining),
                }
            }
            Err(not_until) => Decision {
                allowed: false,
                limit,
                remaining: 0,
                reset: not_until.wait_time_from(DefaultClock::default().now()),
            },
        })
    }

    /// Drops the state of keys that are back to a full burst (bounded memory).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Writes `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (whole seconds).
pub fn apply_headers(decision: &Decision, headers: &mut HeaderMap) {
    let reset = decision.reset.as_secs() + u64::from(decision.reset.subsec_nanos() > 0);
    for (name, value) in [
        ("ratelimit-limit", u64::from(decision.limit)),
        ("ratelimit-remaining", u64::from(decision.remaining)),
        ("ratelimit-reset", reset),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses() {
        let limiter = RateLimiter::new(60, 3);
        assert!(limiter.is_enabled());
        let decisions: Vec<_> = (0..4).map(|_| limiter.check("k").unwrap()).collect();
        assert_eq!(
            decisions.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0]
        );
        assert!(!decisions[3].allowed);
        assert!(
            decisions[3].reset > Duration::ZERO && decisions[3].reset <= Duration::from_secs(1)
        );
        assert!(limiter.check("other").unwrap().allowed);
    }

    #[test]
    fn zero_disables() {
        assert!(RateLimiter::new(0, 10).check("k").is_none());
        assert!(!RateLimiter::new(0, 10).is_enabled());
    }
}
