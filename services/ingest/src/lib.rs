//! services/ingest: Collects every upstream source (parking portal, Seoul city data, events, weather, notices), records each run's outcome and stores history.
//!
//! So far it serves gRPC health and reflection and the admin endpoints; its own gRPC service
//! (`hangang.ingest.v1`) and workers arrive with their issues.

use std::net::SocketAddr;

use server::WorkerListeners;
use settings::{AdminSettings, CommonSettings};
use tokio_util::sync::CancellationToken;

/// Everything `hangang-ingest serve` needs, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Listen address of the gRPC server (`grpc.health.v1` and reflection included).
    #[arg(long, env = "GRPC_ADDR", default_value = "0.0.0.0:50051")]
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
        server::Identity { service: "ingest", release_id: config.common.release_id.clone() };
    server::serve_worker(identity, listeners, |routes| routes, shutdown).await
}
