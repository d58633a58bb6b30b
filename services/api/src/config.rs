//! `Config`: everything `hangang-api serve` needs, from the command line or environment.

use std::net::SocketAddr;

use cache::RedisSettings;
use db::DatabaseSettings;
use settings::CommonSettings;

/// Everything `hangang-api serve` needs, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Listen address of the app-facing HTTP API (the contract's routes, the OpenAPI documents and a bare
    /// `/healthz`).
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Where `/healthz` (with the release), `/readyz` and `/metrics` are served: not routed by the Ingress.
    #[command(flatten)]
    pub admin: settings::AdminSettings,

    /// How long a snapshot read from PostgreSQL is reused (in memory and in Redis) before it is read again.
    /// Freshness states are recomputed on every response regardless.
    #[arg(long, env = "HOT_CACHE_TTL_SECONDS", default_value_t = 15)]
    pub hot_cache_ttl_seconds: u64,

    /// The push service, which stores installations and preferences; without it the installation routes
    /// validate their input and answer `503`.
    #[arg(long, env = "PUSH_GRPC_URL")]
    pub push_grpc_url: Option<String>,

    /// The api's token for the push service.
    #[command(flatten)]
    pub grpc_client: server::GrpcClientAuth,

    #[command(flatten)]
    pub write_limits: crate::rate_limit::WriteLimits,

    #[command(flatten)]
    pub http: crate::serve::HttpLimits,

    #[command(flatten)]
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub redis: RedisSettings,

    #[command(flatten)]
    pub common: CommonSettings,
}
