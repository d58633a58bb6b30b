//! services/ingest: collects every upstream source (parking portal, Seoul city data, cultural events, KMA
//! weather, the notice board), records each run's outcome, and stores history for the api and forecast.
//!
//! - `sources/`: one collector per source behind one trait (fetch → parse → classify); parsers are pure
//!   functions over bytes, tested with fixtures in the real formats.
//! - `outcome.rs`: the taxonomy every run ends in (`ok`, `partial`, `no_data`, `failed` + class).
//! - `store.rs`: one transaction per run: history in batches, events/notices, drift and anomalies, run, source
//!   and per-park status, outbox rows for forecast and push, `NOTIFY` for the api.
//! - `event_ledger.rs`: what a listing of events means for the known ones (ids, cancellations, relistings).
//! - `endpoint.rs`: where the sources are (https, or http only on loopback).
//! - `runner.rs`: one collection; `scheduler.rs`: intervals, jitter, backoff; `leadership.rs`: the leader
//!   lock, kept honest under silent faults, and the fence every run's store transaction checks.
//! - `outbox.rs`: the messages queued for forecast and push (typed facts) with their deadlines; `dispatch.rs`
//!   delivers them per destination, concurrently, with retries, expiry and pruning; `metrics.rs` counts them
//!   on `/metrics`.
//! - `retention.rs`: history and runs past `INGEST_RETENTION_DAYS` pruned hourly, per item.
//! - `translate.rs`: curated translation overrides and the optional machine translator.
//! - `operator.rs`: operator notices; `grpc.rs`: the `Ingest` service.

pub mod batch;
pub mod dispatch;
pub mod endpoint;
pub mod event_ledger;
pub mod fetch;
pub mod grpc;
pub mod leadership;
pub mod metrics;
pub mod operator;
pub mod outbox;
pub mod retention;
pub mod runner;
pub mod scheduler;
pub mod sources;
pub mod store;
pub mod translate;

pub use upstream::{kst, outcome};

use std::{net::SocketAddr, sync::Arc, time::Duration};

use contracts::freshness::SourceId;
use db::DatabaseSettings;
use server::WorkerListeners;
use settings::{AdminSettings, CommonSettings, Secret};
use tokio_util::sync::CancellationToken;

use crate::{
    endpoint::UpstreamUrl,
    fetch::Fetcher,
    runner::Runner,
    sources::{COLLECTED, Upstreams},
    store::Peers,
};

/// Where the upstream sources are and how to call them. Every URL is https (plain http only to loopback, for
/// the replay upstream): see [`endpoint::UpstreamUrl`].
#[derive(Clone, Debug, clap::Args)]
pub struct UpstreamSettings {
    /// Base URL of the Hangang integrated parking portal.
    #[arg(long, env = "PARKING_PORTAL_URL", default_value = "https://www.ihangangpark.kr")]
    pub parking_portal_url: UpstreamUrl,

    /// Base URL of the Seoul Open Data Plaza API. Seoul documents only plain http on port 8088; its https
    /// on port 443 is used, since the key is part of every request path.
    #[arg(long, env = "SEOUL_OPENAPI_URL", default_value = "https://openapi.seoul.go.kr")]
    pub seoul_openapi_url: UpstreamUrl,

    /// Seoul Open Data Plaza API key (city data and cultural events are skipped without it).
    #[arg(long, env = "SEOUL_OPENAPI_KEY", hide_env_values = true)]
    pub seoul_openapi_key: Option<Secret>,

    /// Base URL of KMA's short-term forecast service.
    #[arg(
        long,
        env = "KMA_API_URL",
        default_value = "https://apis.data.go.kr/1360000/VilageFcstInfoService_2.0"
    )]
    pub kma_api_url: UpstreamUrl,

    /// data.go.kr service key for KMA (weather fallback is skipped without it).
    #[arg(long, env = "KMA_API_KEY", hide_env_values = true)]
    pub kma_api_key: Option<Secret>,

    /// URL of the Hangang headquarters' notice list page (the board is skipped without it).
    #[arg(long, env = "HANGANG_NOTICES_URL")]
    pub hangang_notices_url: Option<UpstreamUrl>,

    /// Timeout of one upstream request, in seconds.
    #[arg(long, env = "UPSTREAM_TIMEOUT_SECONDS", default_value_t = 10)]
    pub upstream_timeout_seconds: u64,
}

impl UpstreamSettings {
    pub fn upstreams(&self) -> Upstreams {
        Upstreams {
            parking_portal_url: self.parking_portal_url.clone(),
            seoul_openapi_url: self.seoul_openapi_url.clone(),
            seoul_openapi_key: self.seoul_openapi_key.clone(),
            kma_api_url: self.kma_api_url.clone(),
            kma_api_key: self.kma_api_key.clone(),
            notices_url: self.hangang_notices_url.clone(),
        }
    }

    /// The sources that can run with this configuration.
    pub fn enabled_sources(&self) -> Vec<SourceId> {
        COLLECTED
            .into_iter()
            .filter(|source| match source {
                SourceId::ParkingPortal | SourceId::Curated => true,
                SourceId::SeoulCitydata | SourceId::SeoulCulturalEvents => {
                    self.seoul_openapi_key.is_some()
                }
                SourceId::KmaForecast => self.kma_api_key.is_some(),
                SourceId::HangangNotices => self.hangang_notices_url.is_some(),
                SourceId::Operator | SourceId::HangangjariForecast | SourceId::Unknown => false,
            })
            .collect()
    }
}

/// Who may call what: an operator runs a collection now and reads source status.
pub const GRPC_PERMISSIONS: server::grpc_auth::Permissions = &[(
    "operator",
    &["/hangang.ingest.v1.Ingest/RunNow", "/hangang.ingest.v1.Ingest/GetSourceStatus"],
)];

/// Everything `hangang-ingest serve` needs, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Listen address of the gRPC server (`grpc.health.v1` and reflection included).
    #[arg(long, env = "GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,

    /// The forecast service, told to refresh after each cycle (refreshes are queued until it answers).
    #[arg(long, env = "FORECAST_GRPC_URL")]
    pub forecast_grpc_url: Option<String>,

    /// The push service, sent the facts each cycle implies (queued until it answers).
    #[arg(long, env = "PUSH_GRPC_URL")]
    pub push_grpc_url: Option<String>,

    /// A LibreTranslate-compatible translation service for public-data text (`POST {url}/translate`); machine
    /// translation is off without it and the app shows Korean where no curated translation exists.
    #[arg(long, env = "TRANSLATOR_URL")]
    pub translator_url: Option<String>,

    /// API key for the translation service, if it needs one.
    #[arg(long, env = "TRANSLATOR_API_KEY", hide_env_values = true)]
    pub translator_api_key: Option<Secret>,

    /// Days observations (lots, congestion, weather), Seoul's official forecasts and runs are kept (pruned
    /// hourly): more than a year, so last year's same day stays comparable.
    #[arg(long, env = "INGEST_RETENTION_DAYS", default_value_t = 400)]
    pub retention_days: u32,

    /// Multiplies every collection interval (`0.01` makes a 2-minute source run every 1.2 s; local use).
    #[arg(long, env = "SCHEDULE_SCALE", default_value_t = 1.0)]
    pub schedule_scale: f64,

    #[command(flatten)]
    pub upstream: UpstreamSettings,

    #[command(flatten)]
    pub grpc: server::GrpcServerAuth,

    #[command(flatten)]
    pub grpc_client: server::GrpcClientAuth,

    #[command(flatten)]
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub admin: AdminSettings,

    #[command(flatten)]
    pub common: CommonSettings,
}

impl Config {
    pub fn peers(&self) -> Peers {
        Peers { forecast: self.forecast_grpc_url.is_some(), push: self.push_grpc_url.is_some() }
    }
}

/// Builds the runner for a configuration.
pub fn runner(
    pool: sqlx::PgPool,
    upstream: &UpstreamSettings,
    peers: Peers,
    clock: server::clock::Clock,
) -> anyhow::Result<Runner> {
    Ok(Runner {
        pool,
        fetcher: Fetcher::new(Duration::from_secs(upstream.upstream_timeout_seconds.max(1)))?,
        upstreams: upstream.upstreams(),
        peers,
        clock,
    })
}

/// Serves gRPC and the admin endpoints and runs the collection schedule until `shutdown` is cancelled,
/// deciding "now" by `clock` (the system's, except in the end-to-end sandbox).
pub async fn run(
    config: Config,
    clock: server::clock::Clock,
    pool: sqlx::PgPool,
    listeners: WorkerListeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let runner = Arc::new(runner(pool, &config.upstream, config.peers(), clock.clone())?);
    match translate::sync_curated(&runner.pool).await {
        Ok(rows) => tracing::info!(rows, "curated translations synced"),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "curated translations not synced yet")
        }
    }
    let translating = match &config.translator_url {
        Some(url) => {
            let translator =
                translate::HttpTranslator::new(url, config.translator_api_key.clone())?;
            let every = Duration::from_secs(60).mul_f64(config.schedule_scale.clamp(0.001, 1.0));
            Some(tokio::spawn(translate::run(
                runner.pool.clone(),
                translator,
                every,
                clock.clone(),
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let sources = config.upstream.enabled_sources();
    tracing::info!(sources = ?sources, "collecting");
    let schedule = scheduler::Schedule {
        sources,
        election_interval: Duration::from_secs(30).mul_f64(config.schedule_scale.clamp(0.001, 1.0)),
        interval_scale: config.schedule_scale,
        standing: leadership::Standing::default(),
    };
    let standing = schedule.standing.clone();
    let scheduling = tokio::spawn(scheduler::run(runner.clone(), schedule, shutdown.clone()));
    let pruning = tokio::spawn(retention::keep_pruned(
        runner.pool.clone(),
        config.retention_days,
        Duration::from_secs(3_600),
        shutdown.clone(),
    ));
    let metrics = metrics::Metrics::default();
    let token = config.grpc_client.token()?;
    let peer = |url: &Option<String>| -> anyhow::Result<Option<server::grpc_auth::AuthChannel>> {
        let channel = url.as_deref().map(dispatch::channel).transpose()?;
        Ok(channel.map(|channel| server::grpc_auth::authorized(channel, token.as_ref())))
    };
    let dispatcher = dispatch::Dispatcher {
        metrics: metrics.clone(),
        pool: runner.pool.clone(),
        forecast: peer(&config.forecast_grpc_url)?
            .map(contracts::proto::forecast::v1::forecast_client::ForecastClient::new),
        push: peer(&config.push_grpc_url)?
            .map(contracts::proto::push::v1::push_client::PushClient::new),
    };
    let dispatching = (dispatcher.forecast.is_some() || dispatcher.push.is_some())
        .then(|| tokio::spawn(dispatcher.run(Duration::from_secs(1), shutdown.clone())));
    let identity = server::Identity::new("ingest", &config.common);
    // In the background: a start that cannot be recorded is logged and serves anyway.
    drop(identity.record_start(&runner.pool, clock.now(), config.common.ops_retention_days));
    let service = grpc::IngestService { runner, standing };
    let admin = metrics::router(metrics, identity.clone());
    let served = server::serve_worker_with_admin(
        identity,
        listeners,
        server::WorkerGrpc { auth: &config.grpc, permissions: GRPC_PERMISSIONS },
        |mut routes| {
            routes.add_service(contracts::proto::ingest::v1::ingest_server::IngestServer::new(
                service,
            ));
            routes
        },
        admin,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    let _ = scheduling.await;
    let _ = pruning.await;
    for task in [dispatching, translating].into_iter().flatten() {
        let _ = task.await;
    }
    served
}
