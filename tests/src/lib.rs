//! The end-to-end sandbox: all four services started in process on port 0, wired the way production wires
//! them, so tests walk the same paths a user's request and an ingest cycle take.
//!
//! Only the outside world is faked (Seoul's APIs, APNs) and only in the formats it really speaks; PostgreSQL
//! and Redis are real: each sandbox gets a fresh migrated database and its own Redis key prefix. Scenarios
//! can stop and restart workers, stop a private Redis, cut the api off from PostgreSQL ([`link`]) and move
//! every service's clock forward together.
//!
//! The crate is also the home of every benchmark (`examples/bench_*.rs`, run by `cargo xtask bench`): it links
//! all four services, and [`bench`] holds what they share.

pub mod bench;
pub mod link;

use std::net::SocketAddr;

use settings::{AdminSettings, CommonSettings};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// The release id every sandbox service reports.
pub const RELEASE_ID: &str = "sandbox-release";
/// The commit every sandbox service reports.
pub const SOURCE_COMMIT: &str = "5a4db0c0ffee5a4db0c0ffee5a4db0c0ffee5a4d";
/// The environment every sandbox service records its start in.
pub const ENVIRONMENT: &str = "sandbox";

/// A running system; dropping it stops every service.
#[derive(Debug)]
pub struct Sandbox {
    pub api_http: SocketAddr,
    /// The gRPC callers' tokens (`api`, `ingest`, `operator`), each service holding only its own and every
    /// server only their digests, as in the cluster.
    pub grpc_tokens: GrpcTokens,
    /// The api's admin listener: `/healthz` with the release, `/readyz`, `/metrics`.
    pub api_admin: SocketAddr,
    pub workers: Vec<Worker>,
    /// The replay upstream's world: change it to change what the collectors see.
    pub world: replay::World,
    /// Apple's push service, faked: what was delivered, and how to make it fail.
    pub apns: replay::apns::FakeApns,
    /// Every service's clock: [`server::clock::Clock::advance`] makes the whole system live later.
    pub clock: server::clock::Clock,
    shutdown: CancellationToken,
    /// The api's only way to PostgreSQL (the workers connect directly).
    api_database_link: link::Link,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    running: Vec<RunningWorker>,
    /// A Redis of this sandbox's own, when a scenario needs to stop it (see [`Sandbox::start_with_private_redis`]).
    private_redis: Option<PrivateRedis>,
    database: Option<migrate::testing::TestDatabase>,
}

/// The sandbox's gRPC bearer tokens, and the files the calling services read theirs from.
#[derive(Debug)]
pub struct GrpcTokens {
    pub api: server::grpc_auth::BearerToken,
    pub ingest: server::grpc_auth::BearerToken,
    /// What a person calling `RunNow` or `SendTest` would hold.
    pub operator: server::grpc_auth::BearerToken,
    dir: std::path::PathBuf,
}

impl GrpcTokens {
    fn create(dir: std::path::PathBuf) -> anyhow::Result<GrpcTokens> {
        std::fs::create_dir_all(&dir)?;
        let tokens = GrpcTokens {
            api: server::grpc_auth::BearerToken::generate(),
            ingest: server::grpc_auth::BearerToken::generate(),
            operator: server::grpc_auth::BearerToken::generate(),
            dir,
        };
        std::fs::write(tokens.file("api"), tokens.api.expose())?;
        std::fs::write(tokens.file("ingest"), tokens.ingest.expose())?;
        Ok(tokens)
    }

    fn file(&self, caller: &str) -> std::path::PathBuf {
        self.dir.join(format!("{caller}.token"))
    }

    fn client(&self, caller: &str) -> server::GrpcClientAuth {
        server::GrpcClientAuth { grpc_token_file: Some(self.file(caller)) }
    }

    /// A server's configuration: every sandbox caller known (what each may call is the server's own table).
    fn server(&self) -> server::GrpcServerAuth {
        let callers = [("api", &self.api), ("ingest", &self.ingest), ("operator", &self.operator)];
        server::GrpcServerAuth {
            grpc_callers: callers
                .iter()
                .map(|(name, token)| token.caller_entry(name).parse().expect("a valid entry"))
                .collect(),
            grpc_reflection: false,
        }
    }

    /// A channel to `addr` that carries `token`.
    pub async fn channel(
        addr: SocketAddr,
        token: &server::grpc_auth::BearerToken,
    ) -> anyhow::Result<server::grpc_auth::AuthChannel> {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.connect().await?;
        Ok(server::grpc_auth::authorized(channel, Some(token)))
    }
}

/// A Redis server only this sandbox uses: its port survives a restart, its files a temporary directory.
#[derive(Debug)]
struct PrivateRedis {
    server: Option<local_servers::LocalServer>,
    port: u16,
    dir: std::path::PathBuf,
}

/// A worker's configuration, kept so a scenario can stop the worker and start it again.
#[derive(Clone, Debug)]
enum WorkerConfig {
    Ingest(ingest::Config),
    Forecast(forecast::Config),
    Push(push::Config),
}

/// A worker started by the sandbox, with its own shutdown (a child of the sandbox's).
#[derive(Debug)]
struct RunningWorker {
    name: &'static str,
    config: WorkerConfig,
    /// Its pool, connected as its own role.
    pool: sqlx::PgPool,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl RunningWorker {
    fn spawn(
        name: &'static str,
        config: WorkerConfig,
        clock: &server::clock::Clock,
        pool: sqlx::PgPool,
        listeners: server::WorkerListeners,
        parent: &CancellationToken,
    ) -> RunningWorker {
        let clock = clock.clone();
        let shutdown = parent.child_token();
        let token = shutdown.clone();
        let task = match config.clone() {
            WorkerConfig::Ingest(config) => {
                tokio::spawn(ingest::run(config, clock, pool.clone(), listeners, token))
            }
            WorkerConfig::Forecast(config) => {
                tokio::spawn(forecast::run(config, clock, pool.clone(), listeners, token))
            }
            WorkerConfig::Push(config) => {
                tokio::spawn(push::run(config, clock, pool.clone(), listeners, token))
            }
        };
        RunningWorker { name, config, pool, shutdown, task: Some(task) }
    }
}

/// Addresses of one gRPC worker.
#[derive(Clone, Copy, Debug)]
pub struct Worker {
    pub name: &'static str,
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
}

/// A service's database settings: `url` connecting as `role` (the local server trusts loopback, so no password).
fn role_settings(url: &str, role: &str) -> anyhow::Result<db::DatabaseSettings> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow::anyhow!("the test database URL has no scheme"))?;
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    Ok(db::DatabaseSettings {
        database_url: settings::DATABASE_URL.parse_url(&format!("{scheme}://{role}@{host}"))?,
        database_max_connections: 8,
        database_acquire_timeout_ms: 2_000,
        database_statement_timeout_ms: db::DEFAULT_STATEMENT_TIMEOUT_MS,
        database_password_file: None,
    })
}

fn common() -> CommonSettings {
    CommonSettings {
        release_id: RELEASE_ID.to_owned(),
        source_commit: SOURCE_COMMIT.to_owned(),
        environment: ENVIRONMENT.to_owned(),
        log_filter: "warn".to_owned(),
        ..Default::default()
    }
}

/// The TCP address of the PostgreSQL server in `url` (the sandbox needs one to put a link in front of it).
pub async fn postgres_address(url: &str) -> anyhow::Result<SocketAddr> {
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let host = options.get_host();
    anyhow::ensure!(
        !host.starts_with('/'),
        "the sandbox needs PostgreSQL over TCP, not the socket {host}"
    );
    let mut addresses = tokio::net::lookup_host((host, options.get_port())).await?;
    addresses.next().ok_or_else(|| anyhow::anyhow!("{host} does not resolve"))
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn worker_listeners() -> anyhow::Result<server::WorkerListeners> {
    server::WorkerListeners::bind(loopback(), loopback()).await
}

impl Sandbox {
    /// Starts api, ingest, forecast and push on loopback port 0, with the machine's Redis (`REDIS_URL`).
    pub async fn start() -> anyhow::Result<Sandbox> {
        Self::start_with(None).await
    }

    /// Like [`Sandbox::start`], with a Redis server of its own that [`Sandbox::stop_redis`] can stop.
    pub async fn start_with_private_redis() -> anyhow::Result<Sandbox> {
        let dir =
            std::env::temp_dir().join(format!("hangang-sandbox-redis-{}", std::process::id()));
        let server = local_servers::redis(&dir)?;
        let port = server.port();
        Self::start_with(Some(PrivateRedis { server: Some(server), port, dir })).await
    }

    async fn start_with(private_redis: Option<PrivateRedis>) -> anyhow::Result<Sandbox> {
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut workers = Vec::new();

        let database = migrate::testing::TestDatabase::create().await?;
        let clock = server::clock::Clock::shifted();
        let grpc_tokens =
            GrpcTokens::create(std::env::temp_dir().join(format!("{}-grpc", database.name)))?;
        // Every service connects as its own role, as in the cluster, so a missing grant fails here.
        migrate::roles::ensure(&database.pool, None).await?;
        // Push listens first: the api and ingest are configured with its address.
        let push_listeners = worker_listeners().await?;
        let push_url = format!("http://{}", push_listeners.grpc.local_addr()?);
        // Forecast listens before ingest starts: ingest asks it to refresh after each parking cycle.
        let forecast_listeners = worker_listeners().await?;
        let forecast_url = format!("http://{}", forecast_listeners.grpc.local_addr()?);
        let api_listeners = api::Listeners {
            http: TcpListener::bind(loopback()).await?,
            admin: TcpListener::bind(loopback()).await?,
        };
        let api_http = api_listeners.http.local_addr()?;
        let api_admin = api_listeners.admin.local_addr()?;
        let redis_url = match &private_redis {
            Some(private) => format!("redis://127.0.0.1:{}", private.port),
            None => {
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
            }
        };
        let redis = cache::RedisSettings {
            redis_url: settings::REDIS_URL.parse_url(&redis_url)?,
            redis_timeout_ms: 150,
            redis_key_prefix: format!("{}:", database.name),
            redis_password_file: None,
        };
        let api_config = api::Config {
            http_addr: api_http,
            admin: AdminSettings { admin_addr: api_admin },
            hot_cache_ttl_seconds: 15,
            push_grpc_url: Some(push_url.clone()),
            grpc_client: grpc_tokens.client("api"),
            write_limits: api::rate_limit::WriteLimits::default(),
            http: api::serve::HttpLimits::default(),
            database: role_settings(&database.url, "hangang_api")?,
            redis: redis.clone(),
            common: common(),
        };
        let api_database_link =
            link::Link::start(postgres_address(&database.url).await?, shutdown.clone()).await?;
        let api_database = db::pool_options(&api_config.database).connect_lazy_with(
            api_config
                .database
                .connect_options()?
                .host("127.0.0.1")
                .port(api_database_link.addr.port()),
        );
        let api_state = api::AppState::new(
            &api_config,
            api_database,
            cache::Cache::connect(&redis)?,
            clock.clone(),
        );
        tasks.push(tokio::spawn(api::run(api_state, api_listeners, shutdown.clone())));

        let admin = |addr| AdminSettings { admin_addr: addr };

        // The outside world: every upstream source, answering from a scriptable world set to now in Seoul.
        let now_in_seoul = jiff::Timestamp::now().to_zoned(contracts::seoul::zone());
        let world =
            replay::World::at(&now_in_seoul.datetime().strftime("%Y-%m-%dT%H:%M").to_string())?;
        // Scenarios inject their own faults; the day script's failing hour would make them depend on the clock.
        world.update(|state| state.scripted_faults.clear());
        let upstream = replay::spawn(world.clone(), shutdown.clone()).await?;

        let listeners = worker_listeners().await?;
        let (grpc, admin_addr) = (listeners.grpc.local_addr()?, listeners.admin.local_addr()?);
        workers.push(Worker { name: "ingest", grpc, admin: admin_addr });
        let config = ingest::Config {
            grpc_addr: grpc,
            forecast_grpc_url: Some(forecast_url),
            push_grpc_url: Some(push_url.clone()),
            translator_url: None,
            translator_api_key: None,
            // A hundred times faster than production: parking every 1.2 s.
            schedule_scale: 0.01,
            retention_days: 400,
            upstream: ingest::UpstreamSettings {
                parking_portal_url: upstream.parse()?,
                seoul_openapi_url: upstream.parse()?,
                seoul_openapi_key: Some(settings::Secret::new("sandbox")),
                kma_api_url: upstream.parse()?,
                kma_api_key: Some(settings::Secret::new("sandbox")),
                hangang_notices_url: Some(format!("{upstream}/notices").parse()?),
                upstream_timeout_seconds: 2,
            },
            grpc: grpc_tokens.server(),
            grpc_client: grpc_tokens.client("ingest"),
            database: role_settings(&database.url, "hangang_ingest")?,
            admin: admin(admin_addr),
            common: common(),
        };
        let pool = db::connect(&config.database)?;
        let mut running = vec![RunningWorker::spawn(
            "ingest",
            WorkerConfig::Ingest(config),
            &clock,
            pool,
            listeners,
            &shutdown,
        )];

        let listeners = forecast_listeners;
        let (grpc, admin_addr) = (listeners.grpc.local_addr()?, listeners.admin.local_addr()?);
        workers.push(Worker { name: "forecast", grpc, admin: admin_addr });
        let config = forecast::Config {
            grpc_addr: grpc,
            api_url: Some(format!("http://{api_http}")),
            grpc: grpc_tokens.server(),
            database: role_settings(&database.url, "hangang_forecast")?,
            admin: admin(admin_addr),
            common: common(),
        };
        let pool = db::connect(&config.database)?;
        running.push(RunningWorker::spawn(
            "forecast",
            WorkerConfig::Forecast(config),
            &clock,
            pool,
            listeners,
            &shutdown,
        ));

        let listeners = push_listeners;
        let (grpc, admin_addr) = (listeners.grpc.local_addr()?, listeners.admin.local_addr()?);
        workers.push(Worker { name: "push", grpc, admin: admin_addr });
        // Apple's side: a fake APNs that verifies our provider token against a key made for this sandbox.
        let key_dir = std::env::temp_dir().join(format!("{}-apns", database.name));
        std::fs::create_dir_all(&key_dir)?;
        let private_pem = replay::apns::generate_key();
        let key_path = key_dir.join("AuthKey_SANDBOX001.p8");
        std::fs::write(&key_path, &private_pem)?;
        let apns = replay::apns::FakeApns::new(
            &replay::apns::public_pem(&private_pem)?,
            "SANDBOX001",
            "TEAMSANDBX",
            "app.hangangjari",
        )?;
        let apns_url = replay::apns::spawn(apns.clone(), shutdown.clone()).await?;
        let config = push::Config {
            retention_days: 90,
            send_lease_seconds: push::sender::DEFAULT_LEASE.as_secs_f64(),
            grpc_addr: grpc,
            senders: 2,
            redis_url: Some(redis.redis_url.clone()),
            redis_key_prefix: redis.redis_key_prefix.clone(),
            redis_password_file: None,
            apns: push::apns::ApnsSettings {
                apns_url: apns_url.clone(),
                apns_sandbox_url: apns_url,
                apns_key_path: Some(key_path.display().to_string()),
                apns_key_id: "SANDBOX001".into(),
                apns_team_id: "TEAMSANDBX".into(),
                apns_topic: "app.hangangjari".into(),
                apns_ca_file: None,
                apns_timeout_ms: 10_000,
            },
            grpc: grpc_tokens.server(),
            database: role_settings(&database.url, "hangang_push")?,
            admin: admin(admin_addr),
            common: common(),
        };
        let pool = db::connect(&config.database)?;
        running.push(RunningWorker::spawn(
            "push",
            WorkerConfig::Push(config),
            &clock,
            pool,
            listeners,
            &shutdown,
        ));

        Ok(Sandbox {
            api_http,
            grpc_tokens,
            api_admin,
            workers,
            world,
            apns,
            clock,
            shutdown,
            api_database_link,
            tasks,
            running,
            private_redis,
            database: Some(database),
        })
    }

    /// Stops every service and waits for each to finish cleanly; an error from any of them is returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            task.await??;
        }
        for worker in &mut self.running {
            if let Some(task) = worker.task.take() {
                task.await??;
            }
        }
        if let Some(database) = self.database.take() {
            database.drop_now().await?;
        }
        Ok(())
    }
}

impl Sandbox {
    /// Stops one worker (`ingest`, `forecast` or `push`) the way SIGTERM does, waiting until it has finished
    /// its current unit of work and closed its listeners.
    pub async fn stop_worker(&mut self, name: &str) -> anyhow::Result<()> {
        let worker = self.running.iter_mut().find(|worker| worker.name == name);
        let worker = worker.ok_or_else(|| anyhow::anyhow!("no worker `{name}`"))?;
        worker.shutdown.cancel();
        if let Some(task) = worker.task.take() {
            task.await??;
        }
        Ok(())
    }

    /// Starts a stopped worker again on the same addresses, as a restarted pod would come back.
    pub async fn start_worker(&mut self, name: &str) -> anyhow::Result<()> {
        let addresses = self.workers.iter().find(|worker| worker.name == name);
        let addresses = *addresses.ok_or_else(|| anyhow::anyhow!("no worker `{name}`"))?;
        let listeners = server::WorkerListeners::bind(addresses.grpc, addresses.admin).await?;
        let index =
            self.running.iter().position(|worker| worker.name == name).expect("listed above");
        anyhow::ensure!(self.running[index].task.is_none(), "`{name}` is running");
        let config = self.running[index].config.clone();
        let pool = self.running[index].pool.clone();
        self.running[index] = RunningWorker::spawn(
            addresses.name,
            config,
            &self.clock,
            pool,
            listeners,
            &self.shutdown,
        );
        Ok(())
    }

    /// Cuts the api off from PostgreSQL (the workers still reach it), as a network partition would.
    pub fn cut_api_database(&self) {
        self.api_database_link.cut();
    }

    /// Silences the api's path to PostgreSQL: nothing gets through and nothing is closed, as when the
    /// database's node dies or a firewall drops the packets.
    pub fn silence_api_database(&self) {
        self.api_database_link.silence();
    }

    /// Lets the api reach PostgreSQL again.
    pub fn restore_api_database(&self) {
        self.api_database_link.restore(&self.shutdown);
    }

    /// Stops the sandbox's own Redis (started with [`Sandbox::start_with_private_redis`]).
    pub fn stop_redis(&mut self) -> anyhow::Result<()> {
        let private =
            self.private_redis.as_mut().ok_or_else(|| anyhow::anyhow!("no private Redis"))?;
        drop(private.server.take());
        Ok(())
    }

    /// Starts the sandbox's own Redis again, empty, on the port the services know.
    pub fn start_redis(&mut self) -> anyhow::Result<()> {
        let private =
            self.private_redis.as_mut().ok_or_else(|| anyhow::anyhow!("no private Redis"))?;
        private.server = Some(local_servers::redis_on(private.port, &private.dir)?);
        Ok(())
    }

    /// The keys in the sandbox's own Redis.
    pub fn redis_keys(&self) -> anyhow::Result<Vec<String>> {
        let private =
            self.private_redis.as_ref().ok_or_else(|| anyhow::anyhow!("no private Redis"))?;
        let output = std::process::Command::new("redis-cli")
            .args(["-p", &private.port.to_string(), "--scan"])
            .output()?;
        anyhow::ensure!(output.status.success(), "redis-cli failed");
        Ok(String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect())
    }

    /// The sandbox's database, for seeding and inspecting what the services wrote.
    pub fn database(&self) -> &sqlx::PgPool {
        &self.database.as_ref().expect("present until stop").pool
    }

    /// The sandbox database's URL, for a tool that connects on its own (the smoke check).
    pub fn database_url(&self) -> &str {
        &self.database.as_ref().expect("present until stop").url
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
