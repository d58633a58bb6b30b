//! services/push: installations and preferences; facts → candidates → recorded decisions → a durable outbox
//! → APNs over HTTP/2, every attempt recorded.
//!
//! - `installations.rs`: registration, token refresh, preferences, deletion; secrets stored as hashes.
//! - `decide.rs`: whether a fact triggers a preference and, if so, push now or suppress with a reason.
//! - `facts.rs`: what a submission may carry (known parks and lots, bounded text), checked before storing.
//! - `pipeline.rs`: one transaction per submission: facts stored once by key, decisions, outbox rows.
//! - `grpc.rs`: the `hangang.push.v1.Push` service.
//! - `jwt.rs`: the provider token; `apns.rs`: the HTTP/2 client; `sender.rs`: drains the outbox.
//! - `metrics.rs`: `/metrics` on the admin listener (facts, decisions, send outcomes, outbox backlog).
//! - `retention.rs`: old decisions, alerts, attempts and facts pruned hourly.

pub mod apns;
pub mod decide;
pub mod facts;
pub mod grpc;
pub mod index;
pub mod installations;
pub mod jwt;
pub mod metrics;
pub mod pipeline;
pub mod retention;
pub mod secret;
pub mod sender;

use std::net::SocketAddr;

use anyhow::Context as _;

use db::DatabaseSettings;
use server::WorkerListeners;
use settings::{AdminSettings, CommonSettings};
use tokio_util::sync::CancellationToken;

/// Who may call what: the api manages installations, ingest submits facts, an operator sends test alerts.
pub const GRPC_PERMISSIONS: server::grpc_auth::Permissions = &[
    (
        "api",
        &[
            "/hangang.push.v1.Push/UpsertInstallation",
            "/hangang.push.v1.Push/UpdatePreferences",
            "/hangang.push.v1.Push/DeleteInstallation",
        ],
    ),
    ("ingest", &["/hangang.push.v1.Push/SubmitFacts"]),
    ("operator", &["/hangang.push.v1.Push/SendTest"]),
];

/// Everything `hangang-push serve` needs, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Listen address of the gRPC server (`grpc.health.v1` and reflection included).
    #[arg(long, env = "GRPC_ADDR", default_value = "0.0.0.0:50053")]
    pub grpc_addr: SocketAddr,

    /// Sender tasks draining the outbox concurrently (each sends its batch over the shared HTTP/2 connection).
    #[arg(long, env = "PUSH_SENDERS", default_value_t = 2)]
    pub senders: usize,

    /// How long a send round's claim holds its alerts (seconds): a sender that dies leaves them to the others
    /// after this long. Must outlast two APNs requests (`APNS_TIMEOUT_MS` each) by a second.
    #[arg(long, env = "PUSH_SEND_LEASE_SECONDS", default_value_t = sender::DEFAULT_LEASE.as_secs_f64())]
    pub send_lease_seconds: f64,

    /// Redis for the preference index (candidate lookup); without it candidates come from PostgreSQL.
    #[arg(long, env = "REDIS_URL", value_parser = settings::REDIS_URL)]
    pub redis_url: Option<settings::ConnectionUrl>,

    /// Key namespace in Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "")]
    pub redis_key_prefix: String,

    /// A file with the password of push's Redis user (named in `REDIS_URL`); a mounted Secret key.
    #[arg(long, env = "REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<std::path::PathBuf>,

    /// Days decisions, sent alerts, their delivery attempts and facts are kept (pending alerts always are).
    #[arg(long, env = "PUSH_RETENTION_DAYS", default_value_t = 90)]
    pub retention_days: u32,

    #[command(flatten)]
    pub apns: apns::ApnsSettings,

    #[command(flatten)]
    pub grpc: server::GrpcServerAuth,

    #[command(flatten)]
    pub database: DatabaseSettings,

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
    let identity = server::Identity::new("push", &config.common);
    // In the background: a start that cannot be recorded is logged and serves anyway.
    drop(identity.record_start(&pool, clock.now(), config.common.ops_retention_days));
    let metrics = metrics::Metrics::default();
    let mut senders = Vec::new();
    match apns::ApnsClient::from_settings(&config.apns)? {
        Some(client) => {
            let lease = std::time::Duration::try_from_secs_f64(config.send_lease_seconds)
                .ok()
                .filter(|lease| *lease > client.longest_send() + std::time::Duration::from_secs(1))
                .with_context(|| {
                    format!(
                        "PUSH_SEND_LEASE_SECONDS={} must outlast two APNs requests ({:?}) by a second",
                        config.send_lease_seconds,
                        client.longest_send()
                    )
                })?;
            let sender = sender::Sender {
                lease,
                ..sender::Sender::new(pool.clone(), std::sync::Arc::new(client), clock.clone())
            };
            for _ in 0..config.senders.max(1) {
                let idle = std::time::Duration::from_millis(250);
                senders.push(tokio::spawn(sender.clone().run(
                    idle,
                    metrics.clone(),
                    shutdown.clone(),
                )));
            }
        }
        None => {
            tracing::warn!("APNS_KEY_PATH is not set: alerts are decided and queued but not sent")
        }
    }
    senders.push(tokio::spawn(retention::keep_pruned(
        pool.clone(),
        config.retention_days,
        std::time::Duration::from_secs(3_600),
        shutdown.clone(),
    )));
    let index = match &config.redis_url {
        Some(url) => {
            let settings = cache::RedisSettings {
                redis_url: url.clone(),
                redis_timeout_ms: 150,
                redis_key_prefix: config.redis_key_prefix.clone(),
                redis_password_file: config.redis_password_file.clone(),
            };
            let index = index::PreferenceIndex { cache: cache::Cache::connect(&settings)? };
            let hourly = std::time::Duration::from_secs(3_600);
            senders.push(tokio::spawn(index.clone().keep_rebuilt(
                pool.clone(),
                hourly,
                shutdown.clone(),
            )));
            Some(index)
        }
        None => None,
    };
    let service = grpc::PushService {
        pool: pool.clone(),
        index,
        metrics: metrics.clone(),
        clock: clock.clone(),
    };
    let grpc = server::WorkerGrpc { auth: &config.grpc, permissions: GRPC_PERMISSIONS };
    let served = server::serve_worker_with_admin(
        identity.clone(),
        listeners,
        grpc,
        |mut routes| {
            routes.add_service(contracts::proto::push::v1::push_server::PushServer::new(service));
            routes
        },
        metrics::router(metrics, pool, identity),
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    for sender in senders {
        let _ = sender.await;
    }
    served
}
