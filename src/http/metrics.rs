//! Prometheus metrics: request counts and latency by route and status, and pool usage.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::db::Pool;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

/// The process's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pool_size: Gauge,
    pool_available: Gauge,
    pool_waiting: Gauge,
    feed_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rapport");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let (pool_size, pool_available, pool_waiting) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            latency.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_available.clone(),
        );
        registry.register(
            "db_pool_waiting_requests",
            "Requests waiting for a connection",
            pool_waiting.clone(),
        );
        let feed_lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "change_feed_lag_seconds",
            "Age of the oldest transaction still running: how far the change feed and webhook fan-out are held back",
            feed_lag.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            pool_size,
            pool_available,
            pool_waiting,
            feed_lag,
        }
    }
}

impl Metrics {
    /// Records one answered request. `route` is the matched pattern, never the raw path,
    /// so that ids do not explode the label space.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// The text exposition, with pool gauges read now and the feed's lag as last measured
    /// (`None` keeps the previous reading).
    pub fn render(&self, pool: &Pool, feed_lag_seconds: Option<f64>) -> String {
        if let Some(lag) = feed_lag_seconds {
            self.feed_lag.set(lag);
        }
        let status = pool.status();
        self.pool_size.set(status.size as i64);
        self.pool_available.set(status.available as i64);
        self.pool_waiting.set(status.waiting as i64);
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
