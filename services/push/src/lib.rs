//! services/push: installations and preferences; facts → candidates → recorded decisions → a durable outbox;
//! (APNs delivery from the outbox is the next step).
//!
//! - `installations.rs`: registration, token refresh, preferences, deletion; secrets stored as hashes.
//! - `decide.rs`: whether a fact triggers a preference and, if so, push now or suppress with a reason.
//! - `pipeline.rs`: one transaction per submission: facts stored once by key, decisions, outbox rows.
//! - `grpc.rs`: the `hangang.push.v1.Push` service.

pub mod decide;
pub mod grpc;
pub mod installations;
pub mod pipeline;
pub mod secret;

use std::net::SocketAddr;

use db::DatabaseSettings;
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
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub admin: AdminSettings,

    #[command(flatten)]
    pub common: CommonSettings,
}

/// Serves on `listeners` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    pool: sqlx::PgPool,
    listeners: WorkerListeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let identity =
        server::Identity { service: "push", release_id: config.common.release_id.clone() };
    let service = grpc::PushService { pool };
    server::serve_worker(
        identity,
        listeners,
        |mut routes| {
            routes.add_service(contracts::proto::push::v1::push_server::PushServer::new(service));
            routes
        },
        shutdown,
    )
    .await
}
