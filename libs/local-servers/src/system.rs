//! The whole system as local processes: private PostgreSQL and Redis when none answers, the replay upstream
//! and an APNs sink in this process, and the four service binaries as children on fixed loopback ports.
//! `cargo xtask dev` shows it on a status screen; `cargo xtask bench e2e` loads it. Dropping the [`System`]
//! stops everything, services first, each given a grace period after SIGTERM.

#![allow(
    clippy::print_stderr,
    reason = "the commands that run the system show its progress on stderr"
)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use sha2::Digest as _;
use xshell::{Shell, cmd};

/// How many simulated seconds pass per real second in the replay upstream.
pub const DAY_SPEED: i64 = 60;
pub const API_ADDR: &str = "127.0.0.1:8080";
/// The api's admin listener (`/healthz` with the release, `/readyz`, `/metrics`).
pub const API_ADMIN: &str = "127.0.0.1:9090";
// The workers' fixed local addresses. The gRPC ports sit below Linux's ephemeral range (32768-60999), where a
// listener can find its port already taken by some outgoing connection's local end.
pub const INGEST_GRPC: &str = "127.0.0.1:15051";
pub const FORECAST_GRPC: &str = "127.0.0.1:15052";
pub const PUSH_GRPC: &str = "127.0.0.1:15053";
pub const INGEST_ADMIN: &str = "127.0.0.1:9091";
pub const FORECAST_ADMIN: &str = "127.0.0.1:9092";
pub const PUSH_ADMIN: &str = "127.0.0.1:9093";

/// The local system's gRPC tokens: a file each for the api's and ingest's, and `GRPC_CALLERS` for the servers.
struct GrpcTokens {
    api_file: PathBuf,
    ingest_file: PathBuf,
    callers: String,
}

impl GrpcTokens {
    fn create(dir: &Path) -> anyhow::Result<GrpcTokens> {
        let mut callers = Vec::new();
        let mut file = |caller: &str| -> anyhow::Result<PathBuf> {
            let mut bytes = [0_u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
            let token = hex::encode(bytes);
            callers
                .push(format!("{caller}={}", hex::encode(sha2::Sha256::digest(token.as_bytes()))));
            let path = dir.join(format!("{caller}.grpc-token"));
            std::fs::write(&path, token)?;
            Ok(path)
        };
        let api_file = file("api")?;
        let ingest_file = file("ingest")?;
        file("operator")?;
        Ok(GrpcTokens { api_file, ingest_file, callers: callers.join(",") })
    }
}

/// The service processes; dropping them stops and reaps every one.
#[derive(Debug)]
pub struct Children(pub Vec<(&'static str, Child)>);

/// How long services get to finish their current work after SIGTERM, as Kubernetes would give them.
const GRACE: Duration = Duration::from_secs(10);

impl Drop for Children {
    /// SIGTERM to all (each finishes its unit of work and closes its listeners), then SIGKILL to any still
    /// running after [`GRACE`].
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let terminated = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            if !terminated.is_ok_and(|status| status.success()) {
                let _ = child.kill();
            }
        }
        let deadline = std::time::Instant::now() + GRACE;
        for (name, child) in &mut self.0 {
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = child.kill();
                        break child.wait().ok();
                    }
                }
            };
            match status {
                Some(status) => eprintln!("system: stopped {name} ({status})"),
                None => eprintln!("system: stopped {name}"),
            }
        }
    }
}

/// The whole system running on this machine: private servers (if any), the replay upstream and APNs sink in
/// this process, the four services as child processes. Dropping it stops everything, services first.
pub struct System {
    // Field order is drop order: services, then the in-process fakes, then the private servers they used.
    pub children: Children,
    pub runtime: tokio::runtime::Runtime,
    shutdown: tokio_util::sync::CancellationToken,
    pub world: replay::World,
    pub apns: replay::apns::FakeApns,
    pub upstream: String,
    pub database_url: String,
    _private: Vec<crate::LocalServer>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("children", &self.children)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        // Stops the in-process fakes' tasks; the fields then drop in order (services, runtime, servers).
        self.shutdown.cancel();
        for server in &self._private {
            eprintln!("system: stopping the private {} after the services", server.name());
        }
    }
}

/// How to start the system.
#[derive(Debug, Default)]
pub struct Options<'a> {
    /// Extra variables for the api's environment.
    pub api_env: &'a [(&'a str, &'a str)],
    /// Let the replay upstream play its scripted day (lots filling and emptying, a failing hour).
    pub advance_day: bool,
    /// The database to migrate and use (created when missing).
    pub database: &'a str,
    /// Start from an empty database (drop it first).
    pub fresh: bool,
}

/// Starts the system with the service binaries in `bin`, keeping private servers' data and the APNs key under
/// `work_dir`.
pub fn start(
    sh: &Shell,
    bin: &std::path::Path,
    work_dir: &std::path::Path,
    options: &Options<'_>,
) -> anyhow::Result<System> {
    let dev_dir = work_dir.to_owned();
    // Servers this run starts itself, stopped (last) when it ends.
    let mut private = Vec::new();
    let mut admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if cmd!(sh, "psql {admin_url} -Atqc 'select 1'").quiet().ignore_stderr().read().is_err() {
        let cluster = crate::postgres_dir(&dev_dir.join("postgres"));
        eprintln!(
            "dev: no PostgreSQL answers at {}; starting a private one in {}",
            redact(&admin_url),
            cluster.display()
        );
        let server = crate::postgres(&cluster)?;
        admin_url = server.url.clone();
        private.push(server);
    }
    let mut redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if !crate::redis_answers(&redis_url) {
        eprintln!("system: no Redis answers at {}; starting a private one", redact(&redis_url));
        let server = crate::redis(&dev_dir.join("redis"))?;
        redis_url = server.url.clone();
        private.push(server);
    }
    let name = options.database;
    if options.fresh {
        let drop = format!("drop database if exists {name} with (force)");
        cmd!(sh, "psql {admin_url} -qc {drop}").run()?;
    }
    let query = format!("select 1 from pg_database where datname = '{name}'");
    let exists = cmd!(sh, "psql {admin_url} -Atqc {query}").read()?;
    if exists.trim() != "1" {
        let create = format!("create database {name}");
        cmd!(sh, "psql {admin_url} -qc {create}").run()?;
    }
    let database_url = replace_database(&admin_url, name);
    let migrate = Command::new(bin.join("hangang-api"))
        .arg("migrate")
        .env("DATABASE_URL", &database_url)
        .status()?;
    if !migrate.success() {
        bail!("hangang-api migrate failed");
    }

    let runtime = tokio::runtime::Runtime::new()?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let seoul = contracts::seoul::zone();
    let start = jiff::Timestamp::now();
    let at = move |elapsed: i64| {
        let simulated = start
            .checked_add(jiff::SignedDuration::from_secs(elapsed * DAY_SPEED))
            .unwrap_or(start);
        simulated.to_zoned(seoul.clone()).datetime().strftime("%Y-%m-%dT%H:%M").to_string()
    };
    let world = replay::World::at(&at(0))?;
    let upstream = runtime.block_on(replay::spawn(world.clone(), shutdown.clone()))?;
    if !options.advance_day {
        // A still world: whoever drives the system sets every value, and no scripted outage interferes.
        world.update(|state| state.scripted_faults.clear());
    }
    let advancing = options.advance_day.then(|| {
        let world = world.clone();
        let at = at.clone();
        async move {
            let mut elapsed = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                elapsed += 1;
                let _ = world.advance_to(&at(elapsed));
            }
        }
    });
    if let Some(advancing) = advancing {
        runtime.spawn(advancing);
    }

    // Apple's side: a local APNs sink that verifies the provider token of a key made for this run.
    let key_dir = dev_dir;
    std::fs::create_dir_all(&key_dir)?;
    let private_pem = replay::apns::generate_key();
    let key_path = key_dir.join("AuthKey_DEVKEY0001.p8");
    std::fs::write(&key_path, &private_pem)?;
    let apns = replay::apns::FakeApns::new(
        &replay::apns::public_pem(&private_pem)?,
        "DEVKEY0001",
        "DEVTEAM001",
        "app.hangangjari",
    )?;
    let apns_url = runtime.block_on(replay::apns::spawn(apns.clone(), shutdown.clone()))?;

    // gRPC callers: the api and ingest each read their own token from a file; every server knows the callers
    // by their tokens' SHA-256 (as in the cluster). The operator's token is printed for people who call RunNow.
    let tokens = GrpcTokens::create(&key_dir)?;
    let common = |command: &mut Command| {
        command
            .env("DATABASE_URL", &database_url)
            .env("RELEASE_ID", "dev")
            .env("RUST_LOG", "warn")
            .env("GRPC_CALLERS", &tokens.callers);
    };
    let mut children = Children(Vec::new());
    let mut spawn = |name: &'static str, configure: &dyn Fn(&mut Command)| -> anyhow::Result<()> {
        let mut command = Command::new(bin.join(name));
        common(&mut command);
        configure(&mut command);
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("failed to start {name}"))?;
        children.0.push((name, child));
        Ok(())
    };
    spawn("hangang-api", &|c| {
        c.envs(options.api_env.iter().copied())
            .env("HTTP_ADDR", API_ADDR)
            .env("ADMIN_ADDR", API_ADMIN)
            .env("REDIS_URL", &redis_url)
            .env("REDIS_KEY_PREFIX", "dev:")
            .env("PUSH_GRPC_URL", format!("http://{PUSH_GRPC}"))
            .env("GRPC_TOKEN_FILE", &tokens.api_file);
    })?;
    spawn("hangang-ingest", &|c| {
        c.env("GRPC_ADDR", INGEST_GRPC)
            .env("GRPC_TOKEN_FILE", &tokens.ingest_file)
            .env("ADMIN_ADDR", INGEST_ADMIN)
            .env("PARKING_PORTAL_URL", &upstream)
            .env("SEOUL_OPENAPI_URL", &upstream)
            .env("SEOUL_OPENAPI_KEY", "dev")
            .env("KMA_API_URL", &upstream)
            .env("KMA_API_KEY", "dev")
            .env("HANGANG_NOTICES_URL", format!("{upstream}/notices"))
            .env("PUSH_GRPC_URL", format!("http://{PUSH_GRPC}"))
            .env("FORECAST_GRPC_URL", format!("http://{FORECAST_GRPC}"))
            // Parking every 6 s, city data every 15 s.
            .env("SCHEDULE_SCALE", "0.05");
    })?;
    spawn("hangang-forecast", &|c| {
        c.env("GRPC_ADDR", FORECAST_GRPC)
            .env("ADMIN_ADDR", FORECAST_ADMIN)
            .env("API_URL", format!("http://{API_ADDR}"));
    })?;
    spawn("hangang-push", &|c| {
        c.env("GRPC_ADDR", PUSH_GRPC)
            .env("ADMIN_ADDR", PUSH_ADMIN)
            .env("APNS_URL", &apns_url)
            .env("APNS_SANDBOX_URL", &apns_url)
            .env("APNS_KEY_PATH", &key_path)
            .env("APNS_KEY_ID", "DEVKEY0001")
            .env("APNS_TEAM_ID", "DEVTEAM001")
            .env("APNS_TOPIC", "app.hangangjari")
            .env("REDIS_URL", &redis_url)
            .env("REDIS_KEY_PREFIX", "dev:");
    })?;

    Ok(System {
        children,
        runtime,
        shutdown,
        world,
        apns,
        upstream,
        database_url,
        _private: private,
    })
}

/// `url` with its database name replaced by `name`.
pub fn replace_database(url: &str, name: &str) -> String {
    let authority_end = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[authority_end..].find('/').map_or(url.len(), |i| authority_end + i);
    let query = url[path_start..].find('?').map(|i| &url[path_start + i..]).unwrap_or("");
    format!("{}/{name}{query}", &url[..path_start])
}

/// The URL without a password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}
