//! Prometheus metrics of the push service on the admin listener's `/metrics`: facts and decisions submitted,
//! send outcomes by kind, and the outbox backlog (pending alerts and how overdue the oldest is), the latter
//! read from PostgreSQL at scrape time so every replica reports the shared queue.

use std::sync::{Arc, atomic::AtomicU64};

use axum::{Router, extract::State, response::Response, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use sqlx::PgPool;

use crate::{pipeline::Submitted, sender::Round};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    facts: Family<OutcomeLabels, Counter>,
    decisions: Counter,
    queued: Counter,
    sends: Family<OutcomeLabels, Counter>,
    round_failures: Counter,
    outbox_up: Gauge,
    pending: Gauge,
    oldest_overdue_seconds: Gauge<f64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hangang_push");
        let facts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "facts",
            "Facts received, by outcome: accepted or duplicate",
            facts.clone(),
        );
        let decisions = Counter::default();
        registry.register(
            "decisions",
            "Decisions recorded (push_now or suppress)",
            decisions.clone(),
        );
        let queued = Counter::default();
        registry.register("queued", "Alerts queued in the outbox", queued.clone());
        let sends = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sends",
            "Outbox rows handled, by outcome: sent, retried, dead, deactivated, expired",
            sends.clone(),
        );
        let round_failures = Counter::default();
        registry.register(
            "send_round_failures",
            "Send rounds that failed on the database",
            round_failures.clone(),
        );
        let outbox_up = Gauge::default();
        registry.register(
            "outbox_up",
            "1 when the outbox gauges were read at this scrape",
            outbox_up.clone(),
        );
        let pending = Gauge::default();
        registry.register("outbox_pending", "Alerts waiting to be sent", pending.clone());
        let oldest_overdue_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "outbox_oldest_overdue_seconds",
            "How long the most overdue pending alert has been due (0 when none is)",
            oldest_overdue_seconds.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            facts,
            decisions,
            queued,
            sends,
            round_failures,
            outbox_up,
            pending,
            oldest_overdue_seconds,
        }))
    }
}

impl Metrics {
    pub fn submitted(&self, submitted: &Submitted) {
        let facts = |outcome| self.0.facts.get_or_create(&OutcomeLabels { outcome }).clone();
        facts("accepted").inc_by(u64::from(submitted.accepted));
        facts("duplicate").inc_by(u64::from(submitted.duplicates));
        self.0.decisions.inc_by(u64::from(submitted.decisions));
        self.0.queued.inc_by(u64::from(submitted.queued));
    }

    /// Records one send round; `None` when it failed on the database.
    pub fn round(&self, round: Option<&Round>) {
        let Some(round) = round else {
            self.0.round_failures.inc();
            return;
        };
        for (outcome, count) in [
            ("sent", round.sent),
            ("retried", round.retried),
            ("dead", round.dead),
            ("deactivated", round.deactivated),
            ("expired", round.expired),
        ] {
            self.0.sends.get_or_create(&OutcomeLabels { outcome }).inc_by(u64::from(count));
        }
    }

    async fn read_outbox(&self, pool: &PgPool) {
        // Pending rows only, through the partial index on due time.
        let backlog: sqlx::Result<(i64, Option<f64>)> = sqlx::query_as(
            "select count(*), greatest(extract(epoch from now() - min(next_attempt_at)), 0)::float8
             from push.outbox where status = 'pending'",
        )
        .fetch_one(pool)
        .await;
        match backlog {
            Ok((pending, overdue)) => {
                self.0.pending.set(pending);
                self.0.oldest_overdue_seconds.set(overdue.unwrap_or(0.0));
                self.0.outbox_up.set(1);
            }
            Err(error) => {
                tracing::warn!(%error, "outbox unavailable for /metrics");
                self.0.outbox_up.set(0);
            }
        }
    }
}

/// `/metrics` for the admin listener.
pub fn router(metrics: Metrics, pool: PgPool, identity: server::Identity) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state((metrics, pool, identity))
}

async fn scrape(
    State((metrics, pool, identity)): State<(Metrics, PgPool, server::Identity)>,
) -> Response {
    metrics.read_outbox(&pool).await;
    let mut text = String::new();
    encode(&mut text, &metrics.0.registry).expect("writing to a String cannot fail");
    server::metrics_response(&identity, &text)
}
