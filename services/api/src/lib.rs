//! services/api: the axum HTTP API the iOS app and widgets read (`/v1` frozen, `/v2` current).
//!
//! It only reads: bodies are built from PostgreSQL and Redis that the workers fill; no collection or heavy
//! computation happens during a request. This crate so far serves liveness and readiness; the routes of
//! `contracts::catalogue` arrive with the database foundation.

use std::net::SocketAddr;

use axum::Router;
use settings::CommonSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Everything `hangang-api serve` needs, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Listen address of the app-facing HTTP API (also serves `/healthz` and `/readyz`).
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    #[command(flatten)]
    pub common: CommonSettings,
}

/// The full HTTP router.
pub fn router(config: &Config) -> Router {
    server::health_router(server::Identity {
        service: "api",
        release_id: config.common.release_id.clone(),
    })
}

/// Serves the API on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    server::serve_http(listener, router(&config), shutdown).await
}
