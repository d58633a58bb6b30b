//! services/api: the axum HTTP API the iOS app and widgets read (`/v1` frozen, `/v2` current).
//!
//! It only reads: every body is rendered from a `readmodel::Snapshot` that the store keeps in memory, Redis
//! and, on a miss, reads from PostgreSQL (`store.rs` explains the tiers and fallbacks). No collection or heavy
//! computation happens during a request.
//!
//! - `config.rs`: [`Config`]; `state.rs`: [`AppState`] and the pre-serialized bodies; `changes.rs`: the
//!   `LISTEN` loop that drops hot copies when a writer commits.
//! - `routes/`: handlers; [`router`] lists every route.
//! - `error.rs`: the error envelope and the middleware that adds request ids and metrics.
//! - `request.rs` / `respond.rs`: query parameters and language; pre-serialized bodies, ETags, cache headers;
//!   `encoding.rs`: content codings at bounded levels (every body is compressed once and kept with it).
//! - `app_version.rs`: which app build is calling (`X-App-Version`, the `User-Agent`); `usage.rs`: requests
//!   by API version × app build in `/metrics` and `ops.api_usage_day`; `retirement.rs`: `Deprecation` and
//!   `Sunset` on the responses of a version being retired; `features.rs`: the features file, reloaded when it
//!   changes, behind `GET /v2/config`.
//! - `validate.rs`: installation and preference input rules. `rate_limit.rs`: write-route limits per client,
//!   per installation and for registrations; `client_address.rs`: the client behind trusted proxies.

pub use server::clock;
pub mod app_version;
mod changes;
pub mod client_address;
pub mod config;
pub mod encoding;
pub mod error;
pub mod features;
pub mod metrics;
pub mod rate_limit;
pub mod request;
pub mod respond;
pub mod retirement;
pub mod routes;
pub mod serve;
pub mod smoke;
mod state;
pub mod store;
pub mod usage;
pub mod validate;

use std::time::Duration;

use anyhow::Context as _;
use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::StatusCode,
    middleware,
    routing::{get, post, put},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

pub use config::Config;
pub use state::{AppState, BodyKey, Shared};

/// Largest request body accepted (installation and preference bodies are a few hundred bytes).
const BODY_LIMIT: usize = 16 * 1024;
/// Longest a request may take before it is answered `503`.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The app-facing router: the contract's routes, the OpenAPI documents and a bare `/healthz`. This is the
/// only port the Ingress reaches; the operational routes are on [`admin_router`].
pub fn router(state: AppState) -> Router {
    use routes::{config, installations, ops, reads};
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
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit::limit_writes))
        // Only these routes read a body.
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
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
        .route("/v2/config", get(config::get_config))
        .merge(writes)
        .route("/openapi/v1.json", get(ops::openapi_v1))
        .route("/openapi/v2.json", get(ops::openapi_v2))
        .route("/healthz", get(ops::alive))
        .fallback(|| async { StatusCode::NOT_FOUND })
        // One layer, which also bounds the request's time: axum wraps every route in each layer given here,
        // and each costs every request a boxed clone of the route and a boxed future.
        .layer(middleware::from_fn_with_state(state.clone(), error::envelope))
        .with_state(state)
}

/// The admin router, on its own listener that only the kubelet, Prometheus and the smoke Job reach:
/// `/healthz` with the release, `/readyz` with its dependencies, `/metrics`.
pub fn admin_router(state: AppState) -> Router {
    use routes::ops;
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        .with_state(state)
}

/// The api's two listeners: the app's (`HTTP_ADDR`) and the admin one (`ADMIN_ADDR`).
#[derive(Debug)]
pub struct Listeners {
    pub http: TcpListener,
    pub admin: TcpListener,
}

/// Serves the API and its admin routes until `shutdown` is cancelled, letting in-flight requests finish.
pub async fn run(
    state: AppState,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Listeners { http: listener, admin } = listeners;
    let addr = listener.local_addr()?;
    let admin_addr = admin.local_addr()?;
    tracing::info!(%addr, %admin_addr, "api listening");
    // In the background: a start that cannot be recorded is logged and serves anyway.
    drop(state.identity.record_start(state.store.db(), state.now(), state.ops_retention_days));
    // Subscribe before serving, so no change committed after the first answer can be missed. PostgreSQL being
    // down at start-up must not keep the api from serving cached data: then subscribe in the background.
    let subscribed = match tokio::time::timeout(
        Duration::from_secs(2),
        changes::subscribe(&state.store),
    )
    .await
    {
        Ok(Ok(listener)) => Some(listener),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot listen for data changes yet; retrying in the background");
            None
        }
        Err(_) => None,
    };
    let changes = tokio::spawn(changes::listen_for_changes(
        state.store.clone(),
        subscribed,
        shutdown.clone(),
    ));
    let usage = tokio::spawn(usage::flush_periodically(
        state.usage.clone(),
        state.store.db().clone(),
        state.usage_flush,
        shutdown.clone(),
    ));
    let features =
        tokio::spawn(features::reload_periodically(state.features.clone(), shutdown.clone()));
    let limits = state.http_limits.clone();
    let admin = {
        // A few requests a minute: one thread is plenty.
        let limits =
            serve::HttpLimits { http_threads: std::num::NonZeroUsize::new(1), ..limits.clone() };
        let (router, shutdown) = (admin_router(state.clone()), shutdown.clone());
        tokio::spawn(async move {
            let served = serve::serve(admin, router, &limits, shutdown.clone()).await;
            // Without its admin listener the api cannot be probed or scraped: stop it all.
            shutdown.cancel();
            served
        })
    };
    let served = serve::serve(listener, router(state), &limits, shutdown.clone()).await;
    shutdown.cancel();
    let admin_served = admin.await;
    let _ = changes.await;
    let _ = usage.await;
    let _ = features.await;
    served.context("cannot start the threads serving HTTP_ADDR")?;
    admin_served
        .context("the admin listener's task failed")?
        .context("cannot start the thread serving ADMIN_ADDR")
}
