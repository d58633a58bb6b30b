//! Prometheus metrics of the api, served at `/metrics`: request latency by route, snapshot lookups by cache
//! tier, rebuild duration and failures.

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: String,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: HistogramFamily,
    lookups: Family<TierLabels, Counter>,
    rebuild_seconds: Histogram,
    rebuild_failures: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~1.6 s
    Histogram::new(exponential_buckets(0.000_1, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hangang_api");
        let requests: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            requests.clone(),
        );
        let lookups = Family::<TierLabels, Counter>::default();
        registry.register(
            "snapshot_lookups",
            "Where each request's data came from: memory, redis_hot, postgres, stale_memory, redis_stale, unavailable",
            lookups.clone(),
        );
        let rebuild_seconds = latency_histogram();
        registry.register(
            "snapshot_rebuild_duration_seconds",
            "Time to read a snapshot from PostgreSQL",
            rebuild_seconds.clone(),
        );
        let rebuild_failures = Counter::default();
        registry.register(
            "snapshot_rebuild_failures",
            "Snapshot rebuilds that failed",
            rebuild_failures.clone(),
        );
        Metrics(Arc::new(Inner { registry, requests, lookups, rebuild_seconds, rebuild_failures }))
    }
}

impl Metrics {
    pub fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels { route: route.to_owned(), method: method.to_owned(), status };
        self.0.requests.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    pub fn cache_lookup(&self, tier: &str) {
        self.0.lookups.get_or_create(&TierLabels { tier: tier.to_owned() }).inc();
    }

    pub fn rebuild_took(&self, elapsed: Duration) {
        self.0.rebuild_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn rebuild_failed(&self) {
        self.0.rebuild_failures.inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.0.registry).expect("writing to a String cannot fail");
        text
    }
}
