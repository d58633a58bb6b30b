//! Prometheus metrics of the forecast service on the admin listener's `/metrics`: refresh duration, failures
//! and volume, and the rolling backtest (MAE and p10–p90 coverage by horizon, risk-band calibration), read
//! from `forecast.issued` at scrape time so every replica reports the same numbers.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use axum::{Router, extract::State, response::Response, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use sqlx::PgPool;

use crate::{backtest, refresh::Refreshed};

/// The window the exported backtest covers.
const BACKTEST_WINDOW_DAYS: u32 = 14;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HorizonLabels {
    horizon_minutes: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BandLabels {
    band: String,
}

type F64Gauge = Gauge<f64, AtomicU64>;

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    refresh_seconds: Histogram,
    refresh_failures: Counter,
    lots_refreshed: Counter,
    horizons_scored: Counter,
    backtest_ok: Gauge,
    mae: Family<HorizonLabels, F64Gauge>,
    coverage: Family<HorizonLabels, F64Gauge>,
    scored: Family<HorizonLabels, Gauge>,
    predicted_risk: Family<BandLabels, F64Gauge>,
    observed_full: Family<BandLabels, F64Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hangang_forecast");
        // 1 ms … ~16 s
        let refresh_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "refresh_duration_seconds",
            "Time to refresh after an ingest cycle",
            refresh_seconds.clone(),
        );
        let refresh_failures = Counter::default();
        registry.register("refresh_failures", "Refreshes that failed", refresh_failures.clone());
        let lots_refreshed = Counter::default();
        registry.register(
            "lots_refreshed",
            "Lot forecasts recomputed and stored",
            lots_refreshed.clone(),
        );
        let horizons_scored = Counter::default();
        registry.register(
            "horizons_scored",
            "Issued horizons scored against what was observed",
            horizons_scored.clone(),
        );
        let backtest_ok = Gauge::default();
        registry.register(
            "backtest_up",
            "1 when the backtest below was read at this scrape",
            backtest_ok.clone(),
        );
        let mae = Family::<HorizonLabels, F64Gauge>::default();
        registry.register(
            "backtest_mae_spaces",
            "Mean absolute error of p50 in spaces, last 14 days",
            mae.clone(),
        );
        let coverage = Family::<HorizonLabels, F64Gauge>::default();
        registry.register(
            "backtest_interval_coverage_ratio",
            "Share of actuals inside p10-p90, last 14 days",
            coverage.clone(),
        );
        let scored = Family::<HorizonLabels, Gauge>::default();
        registry.register(
            "backtest_scored_forecasts",
            "Scored horizons in the window",
            scored.clone(),
        );
        let predicted_risk = Family::<BandLabels, F64Gauge>::default();
        registry.register(
            "backtest_risk_predicted_ratio",
            "Mean predicted risk of full per band",
            predicted_risk.clone(),
        );
        let observed_full = Family::<BandLabels, F64Gauge>::default();
        registry.register(
            "backtest_risk_observed_full_ratio",
            "How often the lot was full per band",
            observed_full.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            refresh_seconds,
            refresh_failures,
            lots_refreshed,
            horizons_scored,
            backtest_ok,
            mae,
            coverage,
            scored,
            predicted_risk,
            observed_full,
        }))
    }
}

impl Metrics {
    /// Records one refresh; `None` when it failed.
    pub fn observe_refresh(&self, took: Duration, refreshed: Option<&Refreshed>) {
        self.0.refresh_seconds.observe(took.as_secs_f64());
        match refreshed {
            Some(refreshed) => {
                self.0.lots_refreshed.inc_by(u64::from(refreshed.lots));
                self.0.horizons_scored.inc_by(refreshed.scored);
            }
            None => {
                self.0.refresh_failures.inc();
            }
        }
    }

    /// Reads the rolling backtest into the gauges; on a database error the gauges keep their last values and
    /// `backtest_up` says they are not current.
    async fn read_backtest(&self, pool: &PgPool) {
        let read = async {
            Ok::<_, sqlx::Error>((
                backtest::horizons(pool, BACKTEST_WINDOW_DAYS, None).await?,
                backtest::bands(pool, BACKTEST_WINDOW_DAYS, None).await?,
            ))
        };
        match read.await {
            Ok((horizons, bands)) => {
                for row in horizons {
                    let labels = HorizonLabels { horizon_minutes: row.horizon_minutes as u16 };
                    self.0.mae.get_or_create(&labels).set(row.mean_absolute_error);
                    self.0.coverage.get_or_create(&labels).set(row.coverage);
                    self.0.scored.get_or_create(&labels).set(row.scored);
                }
                for row in bands {
                    let labels = BandLabels { band: row.band };
                    self.0.predicted_risk.get_or_create(&labels).set(row.mean_predicted_risk);
                    self.0.observed_full.get_or_create(&labels).set(row.observed_full_rate);
                }
                self.0.backtest_ok.set(1);
            }
            Err(error) => {
                tracing::warn!(%error, "backtest unavailable for /metrics");
                self.0.backtest_ok.set(0);
            }
        }
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.0.registry).expect("writing to a String cannot fail");
        text
    }
}

/// `/metrics` for the admin listener.
pub fn router(metrics: Metrics, pool: PgPool, identity: server::Identity) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state((metrics, pool, identity))
}

async fn scrape(
    State((metrics, pool, identity)): State<(Metrics, PgPool, server::Identity)>,
) -> Response {
    metrics.read_backtest(&pool).await;
    server::metrics_response(&identity, &metrics.encode())
}
