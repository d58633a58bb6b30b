//! `cargo xtask dev`: the whole system on this machine with embedded defaults.
//!
//! Builds the four services, migrates the database (`DATABASE_URL`, default the local PostgreSQL, database
//! `hangang_dev`), serves the replay upstream in this process (the scripted day, sped up), starts the
//! services against it, prints the URLs and a status screen that refreshes ([`crate::dev_screen`]), and stops
//! everything on Ctrl-C or SIGTERM, leaving no process behind.
//!
//! A local APNs sink (`replay::apns`) receives the alerts, verifying the provider token of a key made for the
//! run. When no PostgreSQL or Redis answers at `DATABASE_URL`/`REDIS_URL` (or the local defaults), private
//! ones are started from the installed server binaries on free ports ([`local_servers`]): Redis under
//! `target/dev/`, PostgreSQL there too or, when running as root, under the temporary directory.

use std::{io::IsTerminal, time::Duration};

use anyhow::bail;
use local_servers::system::{
    self, API_ADDR, API_ADMIN, Children, DAY_SPEED, FORECAST_ADMIN, FORECAST_GRPC, INGEST_ADMIN,
    INGEST_GRPC, Options, PUSH_ADMIN, PUSH_GRPC,
};
use xshell::{Shell, cmd};

use crate::{
    dev_screen::{self, Unreadable},
    target_dir,
};

pub fn run(sh: &Shell) -> anyhow::Result<()> {
    eprintln!("dev: building the services");
    cmd!(sh, "cargo build --locked --bin hangang-api --bin hangang-ingest --bin hangang-forecast --bin hangang-push").run()?;
    let mut system = system::start(
        sh,
        &target_dir().join("debug"),
        &target_dir().join("dev"),
        &Options { api_env: &[], advance_day: true, database: "hangang_dev", fresh: false },
    )?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let header = [
        "Hangangjari · cargo xtask dev · Ctrl-C stops everything".to_owned(),
        format!(
            "api       http://{API_ADDR}/v2/home-summary?lang=en   (also /v2/status; /metrics on {API_ADMIN})"
        ),
        format!(
            "upstream  {} (replayed; a day passes every {} minutes) · APNs sink in this process",
            system.upstream,
            24 * 60 / DAY_SPEED
        ),
        format!(
            "workers   gRPC {INGEST_GRPC} ingest, {FORECAST_GRPC} forecast, {PUSH_GRPC} push; admin \
             {INGEST_ADMIN}, {FORECAST_ADMIN}, {PUSH_ADMIN} (/readyz, /metrics)"
        ),
    ];
    // On a terminal the screen is redrawn in place; in a log it is appended less often.
    let terminal = std::io::stderr().is_terminal();
    let every = Duration::from_secs(if terminal { 2 } else { 10 });

    let interrupted = system.runtime.block_on(async {
        let mut ticker = tokio::time::interval(every);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok::<_, anyhow::Error>(()),
                _ = terminate.recv() => return Ok(()),
                _ = ticker.tick() => {}
            }
            for (name, child) in &mut system.children.0 {
                if let Some(status) = child.try_wait()? {
                    bail!("{name} exited: {status}");
                }
            }
            let reading =
                read(&http, &system.children, &system.world, &system.apns, &system.database_url)
                    .await;
            let screen = dev_screen::render(&reading, &header);
            if terminal {
                eprint!("\x1b[2J\x1b[H{screen}");
            } else {
                eprintln!("{screen}");
            }
        }
    });
    drop(system);
    interrupted
}

/// Where each service answers `/readyz`.
const READINESS: [(&str, &str); 4] = [
    ("hangang-api", API_ADMIN),
    ("hangang-ingest", INGEST_ADMIN),
    ("hangang-forecast", FORECAST_ADMIN),
    ("hangang-push", PUSH_ADMIN),
];

/// One reading for the status screen.
async fn read(
    http: &reqwest::Client,
    children: &Children,
    world: &replay::World,
    apns: &replay::apns::FakeApns,
    database_url: &str,
) -> dev_screen::Reading {
    let mut services = Vec::new();
    for (name, child) in &children.0 {
        let addr = READINESS.iter().find(|(service, _)| service == name).map(|(_, addr)| *addr);
        let ready = match addr {
            Some(addr) => get(http, addr, "/readyz").await.map(drop),
            None => Err("no readiness endpoint known".into()),
        };
        services.push(dev_screen::ServiceState {
            name: name.trim_start_matches("hangang-"),
            pid: child.id(),
            ready,
        });
    }
    dev_screen::Reading {
        services,
        status: api_json(http, "/v2/status").await,
        home: api_json(http, "/v2/home-summary?lang=en").await,
        database: dev_screen::database_counts(database_url),
        upstream_free: world
            .update(|state| state.lots.iter().filter_map(|lot| lot.available).sum()),
        alerts_delivered: apns.deliveries().len(),
    }
}

/// A successful answer's body from `addr`, or why there is none.
async fn get(http: &reqwest::Client, addr: &str, path: &str) -> Result<bytes::Bytes, Unreadable> {
    let response = http
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .map_err(|error| Unreadable(error.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Unreadable(status.to_string()));
    }
    response.bytes().await.map_err(|error| Unreadable(error.to_string()))
}

/// A JSON body from the api, or why there is none.
async fn api_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    path: &str,
) -> Result<T, Unreadable> {
    let body = get(http, API_ADDR, path).await?;
    serde_json::from_slice(&body).map_err(|error| Unreadable(format!("unexpected body: {error}")))
}
