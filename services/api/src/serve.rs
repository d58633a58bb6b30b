//! The api's HTTP server: the router on hyper with a timer, so a client cannot hold a connection for free. A
//! connection that does not finish its request headers in time — on its first request or, idle, before the
//! next (hyper starts the header timer again once a response is written) — is closed, and at most
//! `HTTP_MAX_CONNECTIONS` are served at once: the next is accepted only when one closes, so a flood of idle
//! sockets queues in the kernel's backlog instead of exhausting memory and file descriptors. `axum::serve`
//! has neither.
//!
//! Accepted connections are handed, in turn, to `HTTP_THREADS` threads (one per available core by default),
//! each running a single-threaded runtime that serves its connections from start to end, as nginx's workers
//! do. A hot request is then read, answered and written on one thread, with no task moved between workers and
//! no worker woken to steal it: on a 2-core machine that scheduling was about a fifth of a request's CPU
//! (`cargo xtask bench api`). What talks to PostgreSQL or Redis stays on the main runtime (`store.rs`).

use std::{net::SocketAddr, num::NonZeroUsize, sync::Arc, thread::JoinHandle, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, mpsc},
};
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

    /// Threads serving connections, each with a single-threaded runtime of its own; by default one per core
    /// the process may use (its CPU limit, in a container).
    #[arg(long, env = "HTTP_THREADS")]
    pub http_threads: Option<NonZeroUsize>,
}

impl HttpLimits {
    fn threads(&self) -> usize {
        self.http_threads
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            http_header_read_timeout_ms: 10_000,
            http_max_connections: 1_024,
            http_drain_timeout_ms: 20_000,
            http_threads: None,
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish for the drain period.
/// Fails only when the serving threads cannot be started.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
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
    let mut threads = ConnectionThreads::start(limits.threads())?;
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
        // Out of this runtime's reactor, into the serving thread's.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%remote, %error, "connection lost before it was served");
                continue;
            }
        };
        let (router, builder, watcher) = (router.clone(), builder.clone(), graceful.watcher());
        threads.serve(Box::new(move || {
            tokio::spawn(async move {
                let stream = match tokio::net::TcpStream::from_std(stream) {
                    Ok(stream) => stream,
                    Err(error) => {
                        tracing::debug!(%remote, %error, "cannot serve the connection");
                        return;
                    }
                };
                let service =
                    hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                        request.extensions_mut().insert(ConnectInfo::<SocketAddr>(remote));
                        router.clone().oneshot(request)
                    });
                let connection = watcher.watch(
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned(),
                );
                if let Err(error) = connection.await {
                    tracing::debug!(%remote, error = %error, "connection ended with an error");
                }
                drop(permit);
            });
        }));
    }
    drop(listener);
    let drain = Duration::from_millis(limits.http_drain_timeout_ms);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(?drain, "connections still open after the drain period; dropping them");
    }
    // Connections still open past the drain end with their thread's runtime.
    let _ = tokio::task::spawn_blocking(move || threads.stop()).await;
    Ok(())
}

/// Starts serving one connection; called on the serving thread, inside its runtime.
type Job = Box<dyn FnOnce() + Send>;

/// The threads connections are served on, each a single-threaded runtime taking jobs from its queue.
struct ConnectionThreads {
    queues: Vec<mpsc::UnboundedSender<Job>>,
    threads: Vec<JoinHandle<()>>,
    next: usize,
}

impl ConnectionThreads {
    fn start(count: usize) -> std::io::Result<ConnectionThreads> {
        let mut queues = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        // The serving threads trace and log where the starting thread does: the global subscriber in the
        // services, a test's own where a test set one for its thread.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
            let dispatch = dispatch.clone();
            let serve_jobs = move || {
                let _subscriber = tracing::dispatcher::set_default(&dispatch);
                runtime.block_on(async move {
                    while let Some(job) = jobs.recv().await {
                        job();
                    }
                });
            };
            let thread =
                std::thread::Builder::new().name(format!("http-{index}")).spawn(serve_jobs)?;
            queues.push(queue);
            threads.push(thread);
        }
        Ok(ConnectionThreads { queues, threads, next: 0 })
    }

    /// Hands `job` to the next thread in turn.
    fn serve(&mut self, job: Job) {
        let index = self.next;
        self.next = (index + 1) % self.queues.len();
        // A queue closes only in `stop`, or if its thread died: then the job, with its connection and permit,
        // is dropped.
        if self.queues[index].send(job).is_err() {
            tracing::error!(thread = index, "a connection thread has stopped");
        }
    }

    /// Closes the queues and waits for the threads, dropping the connections they still serve.
    fn stop(self) {
        drop(self.queues);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
