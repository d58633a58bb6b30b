//! services/forecast: parking forecasts per lot (15, 30, 60, 120 minutes: p10/p50/p90, risk of a full lot,
//! confidence, reasons) and congestion outlooks per park, precomputed on `Refresh` from ingest and stored for
//! the api; every issued horizon is scored when its time comes.
//!
//! - `model.rs`: the forecast as a pure function of its evidence (tested on hand-checkable series).
//! - `calendar.rs`: day types (weekends and Korean public holidays) and quarter-hour slots in Seoul.
//! - `refresh.rs`: baselines kept incrementally, scoring, storing forecasts, notifying the api; `accuracy.rs`:
//!   the two-week accuracy shown with each forecast, as sliding sums (`sliding.rs`: what both windows share).
//! - `park.rs`: park outlooks, the official forecast blended with the park's own history; `park_window.rs`: that
//!   history as counts that slide with time.
//! - `grpc.rs`: the `hangang.forecast.v1.Forecast` service; `metrics.rs`: `/metrics` on the admin listener.
//! - `warm.rs`: first-screen warming of the api's home summary after a refresh.
//! - `simulate.rs`, `evaluate.rs`: the seeded evaluation set and the backtest (`cargo xtask eval forecast`).

pub mod accuracy;
pub mod backtest;
pub mod calendar;
pub mod evaluate;
pub mod grpc;
pub mod metrics;
pub mod model;
pub mod park;
pub mod park_window;
pub mod refresh;
pub mod simulate;
pub mod sliding;
pub mod warm;

use std::net::SocketAddr;

use anyhow::Context;

use db::DatabaseSettings;
use server::WorkerListeners;
use settings::{AdminSettings, CommonSettings};
use tokio_util::sync::CancellationToken;

/// Who may call what: ingest asks for refreshes; an operator may also read forecasts and the backtest.
pub const GRPC_PERMISSIONS: server::grpc_auth::Permissions = &[
    ("ingest", &["/hangang.forecast.v1.Forecast/Refresh"]),
    (
        "operator",
        &[
            "/hangang.forecast.v1.Forecast/Refresh",
            "/hangang.forecast.v1.Forecast/GetLotForecast",
            "/hangang.forecast.v1.Forecast/GetBacktestReport",
        ],
    ),
];

/// Everything `hangang-forecast serve` needs, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Listen address of the gRPC server (`grpc.health.v1` and reflection included).
    #[arg(long, env = "GRPC_ADDR", default_value = "0.0.0.0:50052")]
    pub grpc_addr: SocketAddr,

    /// The api's base URL (in-cluster); after each refresh its home summary is requested once so the first
    /// app open after new data finds a warm cache. No warming when unset.
    #[arg(long, env = "API_URL")]
    pub api_url: Option<String>,

    #[command(flatten)]
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub grpc: server::GrpcServerAuth,

    #[command(flatten)]
    pub admin: AdminSettings,

    #[command(flatten)]
    pub common: CommonSettings,
}

/// Serves on `listeners` until `shutdown` is cancelled, deciding "now" by `clock` (the system's, except in the
/// end-to-end sandbox).
pub async fn run(
    config: Config,
    clock: server::clock::Clock,
    pool: sqlx::PgPool,
    listeners: WorkerListeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let identity = server::Identity::new("forecast", &config.common);
    // In the background: a start that cannot be recorded is logged and serves anyway.
    drop(identity.record_start(&pool, clock.now(), config.common.ops_retention_days));
    let metrics = metrics::Metrics::default();
    let warmer = config
        .api_url
        .as_deref()
        .map(warm::Warmer::new)
        .transpose()
        .context("cannot build the warming HTTP client")?;
    let service = grpc::ForecastService {
        pool: pool.clone(),
        metrics: metrics.clone(),
        warmer,
        clock: clock.clone(),
    };
    server::serve_worker_with_admin(
        identity.clone(),
        listeners,
        server::WorkerGrpc { auth: &config.grpc, permissions: GRPC_PERMISSIONS },
        |mut routes| {
            routes.add_service(
                contracts::proto::forecast::v1::forecast_server::ForecastServer::new(service),
            );
            routes
        },
        metrics::router(metrics, pool, identity),
        shutdown,
    )
    .await
}
