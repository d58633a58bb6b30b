//! The api's HTTP server: the router on hyper with a timer, so a client cannot hold a connection for free. A
//! connection that does not finish its request headers in time — on its first request or, idle, before the
//! next (hyper starts the header timer again once a response is written) — is closed, and at most
//! `HTTP_MAX_CONNECTIONS` are served at once: the next is accepted only when one closes, so a flood of idle
//! sockets queues in the kernel's backlog instead of exhausting memory and file descriptors. `axum::serve`
//! has neither.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// What one connection may cost the server.
#[derive(Clone, Debug, clap::Args)]
pub struct HttpLimits {
    /// How long a client has to send a request's headers, on a new connection and between requests on a
    /// kept-alive one (milliseconds); then the connection is closed.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_header_read_timeout_ms: u64,

    /// Connections served at once; more wait in the listen backlog until one closes.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 1_024)]
    pub http_max_connections: usize,

    /// On shutdown, how long open connections may finish their requests before they are dropped
    /// (milliseconds).
    #[arg(long, env = "HTTP_DRAIN_TIMEOUT_MS", default_value_t = 20_000)]
    pub http_drain_timeout_ms: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            http_header_read_timeout_ms: 10_000,
            http_max_connections: 1_024,
            http_drain_timeout_ms: 20_000,
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish for the drain period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpLimits,
    shutdown: CancellationToken,
) {
    let header_timeout = Duration::from_millis(limits.http_header_read_timeout_ms.max(1));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    // HTTP/2 peers that go silent are found by pings, not by the header timer.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(header_timeout))
        .keep_alive_timeout(header_timeout);
    let permits = Arc::new(Semaphore::new(limits.http_max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(remote));
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(
            builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned(),
        );
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%remote, error = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let drain = Duration::from_millis(limits.http_drain_timeout_ms);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(?drain, "connections still open after the drain period; dropping them");
    }
}
