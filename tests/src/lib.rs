//! The end-to-end sandbox: all four services started in process on port 0, wired the way production wires
//! them, so tests walk the same paths a user's request and an ingest cycle take.
//!
//! Only the outside world is faked (Seoul's APIs, APNs) and only in the formats it really speaks; PostgreSQL
//! and Redis are real. So far the sandbox starts the services and exposes their addresses; the data path joins
//! as the services gain it.

use std::net::SocketAddr;

use settings::{AdminSettings, CommonSettings, LogFormat};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// The release id every sandbox service reports.
pub const RELEASE_ID: &str = "sandbox-release";

/// A running system; dropping it stops every service.
#[derive(Debug)]
pub struct Sandbox {
    pub api_http: SocketAddr,
    pub workers: Vec<Worker>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// Addresses of one gRPC worker.
#[derive(Clone, Copy, Debug)]
pub struct Worker {
    pub name: &'static str,
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
}

fn common() -> CommonSettings {
    CommonSettings {
        release_id: RELEASE_ID.to_owned(),
        log_format: LogFormat::Pretty,
        log_filter: "warn".to_owned(),
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn worker_listeners() -> anyhow::Result<server::WorkerListeners> {
    server::WorkerListeners::bind(loopback(), loopback()).await
}

impl Sandbox {
    /// Starts api, ingest, forecast and push on loopback port 0.
    pub async fn start() -> anyhow::Result<Sandbox> {
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut workers = Vec::new();

        let api_listener = TcpListener::bind(loopback()).await?;
        let api_http = api_listener.local_addr()?;
        let api_config = api::Config { http_addr: api_http, common: common() };
        tasks.push(tokio::spawn(api::run(api_config, api_listener, shutdown.clone())));

        let admin = |addr| AdminSettings { admin_addr: addr };

        let listeners = worker_listeners().await?;
        let (grpc, admin_addr) = (listeners.grpc.local_addr()?, listeners.admin.local_addr()?);
        workers.push(Worker { name: "ingest", grpc, admin: admin_addr });
        let config = ingest::Config { grpc_addr: grpc, admin: admin(admin_addr), common: common() };
        tasks.push(tokio::spawn(ingest::run(config, listeners, shutdown.clone())));

        let listeners = worker_listeners().await?;
        let (grpc, admin_addr) = (listeners.grpc.local_addr()?, listeners.admin.local_addr()?);
        workers.push(Worker { name: "forecast", grpc, admin: admin_addr });
        let config =
            forecast::Config { grpc_addr: grpc, admin: admin(admin_addr), common: common() };
        tasks.push(tokio::spawn(forecast::run(config, listeners, shutdown.clone())));

        let listeners = worker_listeners().await?;
        let (grpc, admin_addr) = (listeners.grpc.local_addr()?, listeners.admin.local_addr()?);
        workers.push(Worker { name: "push", grpc, admin: admin_addr });
        let config = push::Config { grpc_addr: grpc, admin: admin(admin_addr), common: common() };
        tasks.push(tokio::spawn(push::run(config, listeners, shutdown.clone())));

        Ok(Sandbox { api_http, workers, shutdown, tasks })
    }

    /// Stops every service and waits for each to finish cleanly; an error from any of them is returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
