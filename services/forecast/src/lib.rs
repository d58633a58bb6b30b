//! services/forecast: Computes parking and congestion forecasts with confidence and reasons, scores them with backtests and warms the api's first-screen cache.
//!
//! So far it serves gRPC health and reflection and the admin endpoints; its own gRPC service
//! (`hangang.forecast.v1`) and workers arrive with their issues.

use std::net::SocketAddr;

use server::WorkerListeners;
use settings::{AdminSettings, CommonSettings};
use tokio_util::sync::CancellationToken;

/// Everything `hangang-forecast serve` needs, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Listen address of the gRPC server (`grpc.health.v1` and reflection included).
    #[arg(long, env = "GRPC_ADDR", default_value = "0.0.0.0:50052")]
    pub grpc_addr: SocketAddr,

    #[command(flatten)]
    pub admin: AdminSettings,

    #[command(flatten)]
    pub common: CommonSettings,
}

/// Serves on `listeners` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listeners: WorkerListeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let identity =
        server::Identity { service: "forecast", release_id: config.common.release_id.clone() };
    server::serve_worker(identity, listeners, |routes| routes, shutdown).await
}
