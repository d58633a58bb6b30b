//! Process plumbing every service shares: the shutdown signal, liveness/readiness endpoints, the process's
//! [`Identity`] (health bodies, `hangang_build_info`), and the gRPC health and reflection services that
//! Kubernetes probes and operators use.

pub mod clock;
pub mod grpc_auth;
mod identity;
pub mod trace;

pub use grpc_auth::{GrpcClientAuth, GrpcServerAuth};
pub use identity::Identity;

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use axum::{Json, Router, routing::get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A `/metrics` response: `hangang_build_info` for `identity`, then the service's own OpenMetrics `text`
/// (which ends the exposition with `# EOF`), in the OpenMetrics content type.
pub fn metrics_response(identity: &Identity, text: &str) -> axum::response::Response {
    use axum::{
        http::{HeaderValue, header},
        response::IntoResponse,
    };
    let mut body = identity.build_info_family();
    body.push_str(if text.is_empty() { "# EOF\n" } else { text });
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Runs `job` now and then every `period` until `shutdown` (a periodic job: a prune, a rebuild); a job in
/// progress finishes before shutdown is noticed.
pub async fn every<Job, Done>(
    period: std::time::Duration,
    shutdown: &CancellationToken,
    mut job: Job,
) where
    Job: FnMut() -> Done,
    Done: Future<Output = ()>,
{
    loop {
        job().await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}

/// Cancels the returned token on SIGTERM (Kubernetes stopping the pod) or Ctrl-C. Every task of the process
/// watches the same token and finishes its current unit of work before exiting.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// `/healthz` (the process is alive) and `/readyz` (it can do its job) with the service's identity.
/// Readiness of dependencies (PostgreSQL, Redis) is added by the services as they gain them.
pub fn health_router<S: Clone + Send + Sync + 'static>(identity: &Identity) -> Router<S> {
    let body = identity.health_body();
    let live = body.clone();
    Router::new()
        .route("/healthz", get(move || std::future::ready(Json(live.clone()))))
        .route("/readyz", get(move || std::future::ready(Json(body.clone()))))
}

/// Binds `addr`, with the address in the error so a port clash is obvious.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, letting in-flight requests finish.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "http listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("http server failed")
}

/// Serves `grpc.health.v1.Health` (reporting `service_name` and the overall server as serving),
/// `grpc.reflection.v1` over the contracts' descriptor set when `auth` enables it, and whatever
/// `add_services` adds, until `shutdown` is cancelled; every call but health must come from a caller `auth`
/// knows and `permissions` allows (see `grpc_auth.rs`).
pub async fn serve_grpc<F>(
    listener: TcpListener,
    service_name: &'static str,
    auth: &GrpcServerAuth,
    permissions: grpc_auth::Permissions,
    add_services: impl FnOnce(tonic::service::RoutesBuilder) -> tonic::service::RoutesBuilder,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr()?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_service_status(service_name, tonic_health::ServingStatus::Serving).await;
    health_reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(health_service);
    if auth.grpc_reflection {
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(contracts::proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("invalid descriptor set for reflection")?;
        routes.add_service(reflection);
    }
    let routes = add_services(routes).routes();
    if auth.grpc_callers.is_empty() {
        tracing::warn!("GRPC_CALLERS is empty: every call but health will be refused");
    }

    tracing::info!(%addr, reflection = auth.grpc_reflection, callers = auth.grpc_callers.len(), "grpc listening");
    let incoming = tokio_stream_from(listener);
    tonic::transport::Server::builder()
        .trace_fn(trace::incoming_span)
        .layer(grpc_auth::AuthLayer(grpc_auth::Policy::new(auth, permissions)))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("grpc server failed")
}

fn tokio_stream_from(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
}

/// A worker's two listeners: gRPC (`GRPC_ADDR`) and admin HTTP (`ADMIN_ADDR`). Bound by `main` from the
/// configuration, or on port 0 by tests.
#[derive(Debug)]
pub struct WorkerListeners {
    pub grpc: TcpListener,
    pub admin: TcpListener,
}

impl WorkerListeners {
    pub async fn bind(grpc_addr: SocketAddr, admin_addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(WorkerListeners {
            grpc: bind(grpc_addr, "GRPC_ADDR").await?,
            admin: bind(admin_addr, "ADMIN_ADDR").await?,
        })
    }
}

/// Runs a worker's listeners until `shutdown`: gRPC (health, reflection and the worker's own services) and
/// `/healthz` + `/readyz` + `/metrics` (only `hangang_build_info`) on the admin listener. Returns when both have
/// stopped.
pub async fn serve_worker(
    identity: Identity,
    listeners: WorkerListeners,
    grpc: WorkerGrpc<'_>,
    add_services: impl FnOnce(tonic::service::RoutesBuilder) -> tonic::service::RoutesBuilder,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let build_info = identity.clone();
    let metrics = Router::new()
        .route("/metrics", get(move || std::future::ready(metrics_response(&build_info, ""))));
    serve_worker_with_admin(identity, listeners, grpc, add_services, metrics, shutdown).await
}

/// A worker's gRPC rules: who its callers are and what each may call.
#[derive(Clone, Copy, Debug)]
pub struct WorkerGrpc<'a> {
    pub auth: &'a GrpcServerAuth,
    pub permissions: grpc_auth::Permissions,
}

/// [`serve_worker`] with more admin routes (such as `/metrics`) beside the health endpoints.
pub async fn serve_worker_with_admin(
    identity: Identity,
    listeners: WorkerListeners,
    grpc: WorkerGrpc<'_>,
    add_services: impl FnOnce(tonic::service::RoutesBuilder) -> tonic::service::RoutesBuilder,
    admin_routes: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let grpc_shutdown = shutdown.clone().cancelled_owned();
    let grpc = serve_grpc(
        listeners.grpc,
        identity.service,
        grpc.auth,
        grpc.permissions,
        add_services,
        grpc_shutdown,
    );
    let admin = serve_http(listeners.admin, health_router(&identity).merge(admin_routes), shutdown);
    tokio::try_join!(grpc, admin)?;
    Ok(())
}
