//! Prometheus metrics of the ingest service on the admin listener's `/metrics`: outbox rows delivered and
//! expired undelivered, by destination.

use std::sync::Arc;

use axum::{Router, extract::State, response::Response, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: &'static str,
}

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    delivered: Family<DestinationLabels, Counter>,
    expired: Family<DestinationLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hangang_ingest");
        let delivered = Family::<DestinationLabels, Counter>::default();
        registry.register(
            "outbox_delivered",
            "Outbox rows delivered to their peer, by destination (forecast, push)",
            delivered.clone(),
        );
        let expired = Family::<DestinationLabels, Counter>::default();
        registry.register(
            "outbox_expired",
            "Outbox rows not delivered by their deadline and dropped, by destination",
            expired.clone(),
        );
        Metrics(Arc::new(Inner { registry, delivered, expired }))
    }
}

impl Metrics {
    pub fn delivered(&self, destination: &'static str) {
        self.0.delivered.get_or_create(&DestinationLabels { destination }).inc();
    }

    pub fn expired(&self, destination: &'static str) {
        self.0.expired.get_or_create(&DestinationLabels { destination }).inc();
    }

    /// The OpenMetrics text of every metric here.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.0.registry).expect("writing to a String cannot fail");
        text
    }
}

/// `/metrics` for the admin listener.
pub fn router(metrics: Metrics, identity: server::Identity) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state((metrics, identity))
}

async fn scrape(State((metrics, identity)): State<(Metrics, server::Identity)>) -> Response {
    server::metrics_response(&identity, &metrics.encode())
}
