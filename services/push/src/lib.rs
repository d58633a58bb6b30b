//! services/push: Turns facts into decisions for subscribed installations, queues alerts in a durable outbox and delivers them to APNs.
//!
//! So far it serves gRPC health and reflection and the admin endpoints; its own gRPC service
//! (`hangang.push.v1`) and workers arrive with their issues.

use std::net::SocketAddr;

use server::WorkerListeners;
use settings::{AdminSettings, CommonSettings};
use tokio_util::sync::CancellationToken;

/// Everything `hangang-push serve` needs, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Listen address of the gRPC server (`grpc.health.v1` and reflection included).
    #[arg(long, env = "GRPC_ADDR", default_value = "0.0.0.0:50053")]
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
        server::Identity { service: "push", release_id: config.common.release_id.clone() };
    server::serve_worker(identity, listeners, |routes| routes, shutdown).await
}
