//! `hangang-api`: command-line entry point of the app-facing HTTP API.

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The Hangangjari app-facing HTTP API.
///
/// Configuration comes from the options below or their environment variables (shown in brackets); an
/// invalid value stops the process with an error naming the option.
#[derive(Debug, Parser)]
#[command(name = "hangang-api", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default when no subcommand is named).
    // Boxed: its options are several times the size of the other subcommands'.
    Serve(Box<ServeConfig>),
    /// Apply database migrations and sync the curated reference data, then exit. Safe to run repeatedly and
    /// concurrently (an advisory lock serializes runs).
    Migrate(MigrateConfig),
    /// Check a deployed release end to end (every service's health and RELEASE_ID, source freshness, a core
    /// route), retrying until a deadline; exits non-zero with the report when it does not pass. Run by the
    /// Argo CD PostSync Job; the expected release is this process's RELEASE_ID.
    Smoke(api::smoke::SmokeConfig),
}

/// `serve`'s options: the api's [`api::Config`], how calling builds are counted, and which API versions are
/// being retired (deploy configuration: `API_RETIREMENT` from the overlay's ConfigMap), and the features file
/// (`FEATURES_FILE`, the overlay's `hangang-features` ConfigMap).
#[derive(Debug, clap::Args)]
struct ServeConfig {
    #[command(flatten)]
    api: api::Config,

    #[command(flatten)]
    usage: api::usage::UsageSettings,

    #[command(flatten)]
    retirement: api::retirement::RetirementSettings,

    #[command(flatten)]
    features: api::features::FeatureSettings,
}

#[derive(Debug, clap::Args)]
struct MigrateConfig {
    #[command(flatten)]
    database: db::DatabaseSettings,

    /// A directory with a password file per service role (`api`, `ingest`, `forecast`, `push`: a mounted
    /// Secret); the roles are made and granted after the migrations either way, with these passwords.
    #[arg(long, env = "DATABASE_ROLE_PASSWORDS_DIR")]
    role_passwords_dir: Option<std::path::PathBuf>,

    #[command(flatten)]
    common: settings::CommonSettings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = settings::with_default_subcommand(
        std::env::args_os().collect(),
        &["serve", "migrate", "smoke"],
        "serve",
    );
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Migrate(config) => migrate(config).await,
        Command::Serve(config) => serve(*config).await,
        Command::Smoke(config) => smoke(config).await,
    }
}

async fn serve(
    ServeConfig { api: config, usage, retirement, features }: ServeConfig,
) -> anyhow::Result<()> {
    let _telemetry = telemetry::init("api", &config.common)?;
    let db = db::connect(&config.database)?;
    config.grpc_client.token().context("GRPC_TOKEN_FILE is not usable")?;
    let cache = cache::Cache::connect(&config.redis).context("REDIS_URL is not usable")?;
    let state = api::AppState::new(&config, db, cache, api::clock::Clock::System)
        .with_usage(&usage)
        .with_retirement(&retirement)
        .with_features(&features)?;
    let listeners = api::Listeners {
        http: server::bind(config.http_addr, "HTTP_ADDR").await?,
        admin: server::bind(config.admin.admin_addr, "ADMIN_ADDR").await?,
    };
    api::run(state, listeners, server::shutdown_on_signal()).await
}

async fn migrate(config: MigrateConfig) -> anyhow::Result<()> {
    let _telemetry = telemetry::init("api", &config.common)?;
    // Each migration sets its own timeouts; one built outside a transaction (a concurrent index) may run
    // long, so the migrate Job's sessions have no statement timeout of their own.
    let database = db::DatabaseSettings { database_statement_timeout_ms: 0, ..config.database };
    let pool = db::connect(&database)?;
    let report = migrate::migrate(&pool, &config.common.release_id).await?;
    migrate::roles::ensure(&pool, config.role_passwords_dir.as_deref())
        .await
        .context("cannot make the services' database roles")?;
    tracing::info!(
        reference_version = %report.reference.version,
        reference_changed = report.reference.changed,
        parks = report.reference.parks,
        lots = report.reference.lots,
        ahead_by_expand_migrations = report.ahead.len(),
        "database migrated"
    );
    Ok(())
}

async fn smoke(config: api::smoke::SmokeConfig) -> anyhow::Result<()> {
    let _telemetry = telemetry::init("api", &config.common)?;
    let started_at = contracts::Timestamp::now();
    let report = api::smoke::run(&config).await?;
    // The report is the command's output, for the Job's log and for a person at a terminal.
    #[allow(clippy::print_stdout, reason = "the report is this subcommand's output")]
    {
        println!("smoke check of release {}:\n{report}", config.common.release_id);
    }
    // The outcome is the record promotion and the release ledger read: a check that cannot be recorded fails.
    if let Some(url) = &config.database_url {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_lazy(url.expose())
            .context("DATABASE_URL is not a valid PostgreSQL URL")?;
        let release = config.desired_release.as_deref().unwrap_or(&config.common.release_id);
        api::smoke::record(&pool, &config.common, release, &report, started_at)
            .await
            .context("the smoke outcome could not be recorded in ops.smoke_run")?;
        tracing::info!(passed = report.passed(), "smoke outcome recorded");
    }
    anyhow::ensure!(
        report.passed(),
        "release {} did not pass the smoke check",
        config.common.release_id
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn migrate_needs_only_the_database() {
        let cli = Cli::try_parse_from([
            "hangang-api",
            "migrate",
            "--database-url",
            "postgres://u@db/hangang",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Migrate(_)));
    }

    #[test]
    fn serve_is_the_default() {
        let args = [
            "hangang-api",
            "--database-url",
            "postgres://u@db/hangang",
            "--redis-url",
            "redis://cache:6379",
        ];
        let args = settings::with_default_subcommand(
            args.iter().map(Into::into).collect(),
            &["serve", "migrate"],
            "serve",
        );
        let Command::Serve(config) = Cli::try_parse_from(args).unwrap().command else {
            panic!("not serve")
        };
        assert_eq!(config.api.http_addr.port(), 8080);
        assert_eq!(config.usage.usage_flush_seconds, 60);
        assert!(config.retirement.api_retirement.get("v1").is_none());
        assert!(config.features.features_file.is_none());
    }
}
