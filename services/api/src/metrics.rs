//! Prometheus metrics of the api, served at `/metrics`: request latency by route, requests by API version and
//! app version (bounded by `usage.rs`), snapshot lookups by cache tier, rebuild duration and failures.

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

use crate::usage::Label;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

/// `app_version` is one of the bounded labels `usage::Usage` hands out, never a raw header.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    api_version: &'static str,
    app_version: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: &'static str,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: HistogramFamily,
    app_requests: Family<AppLabels, Counter>,
    lookups: Family<TierLabels, Counter>,
    rebuild_seconds: Histogram,
    rebuild_failures: Counter,
    features_reloads: Family<OutcomeLabels, Counter>,
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
        let app_requests = Family::<AppLabels, Counter>::default();
        registry.register(
            "app_requests",
            "Requests by API version (v1, v2, other) and calling app version: the most recent builds by name, \
             older ones `other`, unparsable headers `invalid`, callers that are not the app `unknown`",
            app_requests.clone(),
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
        let features_reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "features_reloads",
            "Changes of the features file seen: applied, refused (does not parse; the last good file stays), \
             unreadable",
            features_reloads.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            requests,
            app_requests,
            lookups,
            rebuild_seconds,
            rebuild_failures,
            features_reloads,
        }))
    }
}

impl Metrics {
    pub fn request(&self, route: &str, method: &'static str, status: u16, elapsed: Duration) {
        let labels = RequestLabels { route: route.to_owned(), method, status };
        self.0.requests.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    pub(crate) fn features_reload(&self, outcome: &'static str) {
        self.0.features_reloads.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// One request of `api_version` from `app_version`, a label `usage::Usage` bounded.
    pub(crate) fn app_request(&self, api_version: &'static str, app_version: &Label) {
        let labels = AppLabels { api_version, app_version: app_version.clone() };
        self.0.app_requests.get_or_create(&labels).inc();
    }

    /// Drops the series of an app version no longer among the kept ones, adding their counts to `other` so
    /// every API version's total across app versions never goes down.
    pub(crate) fn fold_app_version_into_other(
        &self,
        api_versions: &[&'static str],
        app_version: &Label,
        other: &Label,
    ) {
        for api_version in api_versions {
            let labels = AppLabels { api_version, app_version: app_version.clone() };
            let Some(count) = self.0.app_requests.get(&labels).map(|counter| counter.get()) else {
                continue;
            };
            self.0.app_requests.remove(&labels);
            let other = AppLabels { api_version, app_version: other.clone() };
            self.0.app_requests.get_or_create(&other).inc_by(count);
        }
    }

    pub fn cache_lookup(&self, tier: &'static str) {
        self.0.lookups.get_or_create(&TierLabels { tier }).inc();
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
