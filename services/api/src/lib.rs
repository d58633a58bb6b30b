//! services/api: the axum HTTP API the iOS app and widgets read (`/v1` frozen, `/v2` current).
//!
//! It only reads: every body is rendered from a `readmodel::Snapshot` that the store keeps in memory, Redis
//! and, on a miss, reads from PostgreSQL (`store.rs` explains the tiers and fallbacks). No collection or heavy
//! computation happens during a request.
//!
//! - `routes/`: handlers; [`router`] lists every route.
//! - `error.rs`: the error envelope and the middleware that adds request ids and metrics.
//! - `request.rs` / `respond.rs`: query parameters and language; pre-serialized bodies, ETags, cache headers.
//! - `validate.rs`: installation and preference input rules. `rate_limit.rs`: write-route limits.

pub use server::clock;
pub mod error;
pub mod metrics;
pub mod rate_limit;
pub mod request;
pub mod respond;
pub mod routes;
pub mod smoke;
pub mod store;
pub mod validate;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::StatusCode,
    middleware,
    routing::{get, post, put},
};
use cache::{Cache, RedisSettings};
use contracts::proto::push::v1::push_client::PushClient;
use contracts::{Timestamp, freshness::ServedFrom, v2::Lang};
use db::DatabaseSettings;
use readmodel::Snapshot;
use settings::CommonSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{compression::CompressionLayer, timeout::TimeoutLayer};

use crate::{
    clock::Clock,
    error::ApiError,
    metrics::Metrics,
    rate_limit::RateLimiter,
    respond::Rendered,
    store::{Current, SnapshotStore},
};

/// Everything `hangang-api serve` needs, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Listen address of the app-facing HTTP API (also serves `/healthz`, `/readyz` and `/metrics`).
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// How long a snapshot read from PostgreSQL is reused (in memory and in Redis) before it is read again.
    /// Freshness states are recomputed on every response regardless.
    #[arg(long, env = "HOT_CACHE_TTL_SECONDS", default_value_t = 15)]
    pub hot_cache_ttl_seconds: u64,

    /// The push service, which stores installations and preferences; without it the installation routes
    /// validate their input and answer `503`.
    #[arg(long, env = "PUSH_GRPC_URL")]
    pub push_grpc_url: Option<String>,

    /// Use the first `X-Forwarded-For` address as the client for rate limiting (only behind a trusted
    /// ingress).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    #[command(flatten)]
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub redis: RedisSettings,

    #[command(flatten)]
    pub common: CommonSettings,
}

/// Which pre-serialized body: a route and a language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BodyKey {
    pub route: &'static str,
    pub lang: Lang,
}

#[derive(Debug)]
struct CachedBody {
    snapshot: Arc<Snapshot>,
    served_from: ServedFrom,
    rendered: Rendered,
}

/// Shared state of every handler: cheap handles only.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<SnapshotStore>,
    pub metrics: Metrics,
    pub release_id: Arc<str>,
    hot_ttl_seconds: i64,
    bodies: Arc<RwLock<HashMap<BodyKey, Arc<CachedBody>>>>,
    rate_limiter: Arc<RateLimiter>,
    /// The push service, when configured.
    pub push: Option<PushClient<tonic::transport::Channel>>,
}

impl AppState {
    pub fn new(config: &Config, db: sqlx::PgPool, cache: Cache, clock: Clock) -> AppState {
        let metrics = Metrics::default();
        let hot_ttl = Duration::from_secs(config.hot_cache_ttl_seconds.max(1));
        AppState {
            store: Arc::new(SnapshotStore::new(db, cache, clock, hot_ttl, metrics.clone())),
            metrics,
            release_id: config.common.release_id.as_str().into(),
            hot_ttl_seconds: hot_ttl.as_secs() as i64,
            bodies: Arc::default(),
            // 20 writes at once per client, then 20 a minute.
            rate_limiter: Arc::new(RateLimiter::new(20, 20, config.trust_forwarded_for)),
            push: config.push_grpc_url.as_deref().and_then(|url| {
                let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
                    .map_err(|error| tracing::error!(%error, "PUSH_GRPC_URL is not a URL; installations are unavailable"))
                    .ok()?;
                Some(PushClient::new(endpoint.connect_timeout(Duration::from_secs(2)).connect_lazy()))
            }),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.store.clock().now()
    }

    async fn current(&self) -> Result<Current, ApiError> {
        self.store
            .current()
            .await
            .map_err(|unavailable| ApiError::Unavailable(unavailable.to_string()))
    }

    /// Until when a body rendered from `current` may be reused by clients and caches.
    fn reusable_until(&self, current: &Current, now: Timestamp) -> Option<Timestamp> {
        let hot_until = Timestamp::from_unix_seconds(
            current.snapshot.built_at.as_unix_seconds() + self.hot_ttl_seconds,
        )
        .expect("in range");
        respond::reusable_until(
            current.served_from,
            hot_until,
            current.snapshot.next_transition(now),
        )
    }

    /// The pre-serialized body for `key`, rendered again only when the snapshot, its origin, or a freshness
    /// state in it changed.
    fn cached_body(
        &self,
        key: BodyKey,
        current: &Current,
        now: Timestamp,
        render: impl FnOnce(Option<Timestamp>) -> Rendered,
    ) -> Rendered {
        let cached = self.bodies.read().expect("lock is never poisoned").get(&key).cloned();
        if let Some(cached) = cached
            && Arc::ptr_eq(&cached.snapshot, &current.snapshot)
            && cached.served_from == current.served_from
            && cached.rendered.reusable_until.is_some_and(|until| now < until)
        {
            return cached.rendered.clone();
        }
        let rendered = render(self.reusable_until(current, now));
        if rendered.reusable_until.is_some() {
            let entry = Arc::new(CachedBody {
                snapshot: current.snapshot.clone(),
                served_from: current.served_from,
                rendered: rendered.clone(),
            });
            self.bodies.write().expect("lock is never poisoned").insert(key, entry);
        }
        rendered
    }
}

/// Largest request body accepted (installation and preference bodies are a few hundred bytes).
const BODY_LIMIT: usize = 16 * 1024;
/// Longest a request may take before it is answered `503`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The full HTTP router.
pub fn router(state: AppState) -> Router {
    use routes::{installations, ops, reads};
    let writes = Router::new()
        .route("/v2/installations", post(installations::register_installation))
        .route(
            "/v2/installations/{installation_id}",
            put(installations::update_installation).delete(installations::delete_installation),
        )
        .route(
            "/v2/installations/{installation_id}/preferences",
            put(installations::update_preferences),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit::limit_writes));
    Router::new()
        .route("/v1/home-summary", get(reads::get_home_summary_v1))
        .route("/v2/home-summary", get(reads::get_home_summary))
        .route("/v2/parks", get(reads::get_parks))
        .route("/v2/parks/{park_id}", get(reads::get_park))
        .route("/v2/parks/{park_id}/forecast", get(reads::get_park_forecast))
        .route("/v2/lots/{lot_id}/forecast", get(reads::get_lot_forecast))
        .route("/v2/widgets/parking", get(reads::get_parking_widget))
        .route("/v2/widgets/park/{park_id}", get(reads::get_park_widget))
        .route("/v2/status", get(reads::get_status))
        .merge(writes)
        .route("/openapi/v1.json", get(ops::openapi_v1))
        .route("/openapi/v2.json", get(ops::openapi_v2))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        .layer(middleware::from_fn_with_state(state.clone(), error::envelope))
        .layer(CompressionLayer::new())
        .with_state(state)
}

async fn subscribe(store: &SnapshotStore) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(store.db()).await?;
    listener.listen(db::DATA_CHANGED_CHANNEL).await?;
    Ok(listener)
}

/// Listens for data changes and drops hot copies so the next request sees them (within a second of the
/// writer's commit instead of a hot-cache period). Reconnects after errors until `shutdown`; while it is
/// disconnected, hot copies still expire by themselves.
async fn listen_for_changes(
    store: Arc<SnapshotStore>,
    mut subscribed: Option<sqlx::postgres::PgListener>,
    shutdown: CancellationToken,
) {
    loop {
        let listening = async {
            let mut listener = match subscribed.take() {
                Some(listener) => listener,
                None => subscribe(&store).await?,
            };
            // A reconnect may have missed notifications: start from a clean slate.
            store.invalidate().await;
            loop {
                listener.recv().await?;
                store.invalidate().await;
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = listening => {
                if let Err(error) = result {
                    tracing::warn!(%error, "change listener lost its connection; retrying");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled, letting in-flight requests finish.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, release_id = %state.release_id, "api listening");
    // Subscribe before serving, so no change committed after the first answer can be missed. PostgreSQL being
    // down at start-up must not keep the api from serving cached data: then subscribe in the background.
    let subscribed = match tokio::time::timeout(Duration::from_secs(2), subscribe(&state.store))
        .await
    {
        Ok(Ok(listener)) => Some(listener),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot listen for data changes yet; retrying in the background");
            None
        }
        Err(_) => None,
    };
    let changes =
        tokio::spawn(listen_for_changes(state.store.clone(), subscribed, shutdown.clone()));
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    let _ = changes.await;
    served.map_err(Into::into)
}
