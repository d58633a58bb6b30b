//! PostgreSQL foundation shared by the services.
//!
//! - [`migration_kind`]: whether a migration is expand or contract, judged from its SQL (the migrations
//!   themselves and applying them are the `migrate` crate's: only what applies them embeds them). Migrations
//!   follow expand → migrate → contract so the previous release keeps working during a rollout, and pass
//!   `squawk` (`.squawk.toml`).
//! - [`reference`]: the curated parks, lots, facilities and transit, and the sync that makes the
//!   `reference` schema match them.
//! - [`forecasts`]: the shapes of the `forecast` schema's JSON columns (the forecast service's own, not the app's).
//! - [`ops`]: the rollout records (process starts, smoke outcomes) of the release ledger.
//! - [`connect`] and [`DatabaseSettings`]: the pool; [`notify_data_changed`]: the one channel to the api.
//!
//! Queries are written with sqlx's runtime API (`query_as` + `FromRow`) rather than the compile-time macros:
//! every query is exercised by tests against a real PostgreSQL, and builds need neither a database nor
//! committed offline metadata.

pub mod forecasts;
pub mod migration_kind;
pub mod ops;
pub mod reference;

use std::time::Duration;

use anyhow::Context;
use contracts::Timestamp;
use settings::{ConnectionUrl, DATABASE_URL};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// Where and how to connect to PostgreSQL.
#[derive(Clone, Debug, clap::Args)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL, e.g. `postgres://hangang@db:5432/hangang` (credentials are never logged).
    #[arg(long, env = "DATABASE_URL", value_parser = DATABASE_URL)]
    pub database_url: ConnectionUrl,

    /// Upper bound of pooled connections per process.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// How long a request waits for a pooled connection before failing (milliseconds).
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 2_000)]
    pub database_acquire_timeout_ms: u64,

    /// The longest any statement may run (`statement_timeout`, milliseconds; 0 turns it off): a query stuck
    /// behind a silent database or a runaway plan fails instead of holding its connection for good.
    /// Migrations set their own.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT_MS", default_value_t = DEFAULT_STATEMENT_TIMEOUT_MS)]
    pub database_statement_timeout_ms: u64,

    /// A file holding the password of the role in `DATABASE_URL` (a mounted Secret key), so the password is in
    /// neither the URL nor the environment. Read once, at start. TLS is set in the URL as libpq's
    /// `sslmode` (`verify-full` with `sslrootcert=<CA file>` in the cluster).
    #[arg(long, env = "DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<std::path::PathBuf>,
}

/// [`DatabaseSettings::database_statement_timeout_ms`]'s default: well above the slowest statement of a
/// healthy system (a forecast refresh's), well below "forever".
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 30_000;

impl DatabaseSettings {
    /// The connection options of `database_url` with the session settings every connection gets: the
    /// statement timeout, and no JIT.
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        let mut options: PgConnectOptions = self
            .database_url
            .expose()
            .parse()
            .context("DATABASE_URL is not a valid PostgreSQL URL")?;
        if let Some(path) = &self.database_password_file {
            let password = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read DATABASE_PASSWORD_FILE {}", path.display())
            })?;
            options = options.password(password.trim());
        }
        // JIT compiles a query whose estimated cost passes a threshold, which the estimates of a growing
        // table cross one day: tens of milliseconds of compiling for a query that runs in one. Every query
        // here is short, so it is off.
        Ok(options.options([
            ("statement_timeout", self.database_statement_timeout_ms.to_string()),
            ("jit", "off".to_owned()),
        ]))
    }
}

/// Opens a pool. Connections are made lazily, so a process can start (and serve stale data) while PostgreSQL
/// is down; readiness reports the outage.
pub fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    Ok(pool_options(settings).connect_lazy_with(settings.connect_options()?))
}

/// The pool's size and acquire timeout from `settings`, for a caller that connects with options of its own.
pub fn pool_options(settings: &DatabaseSettings) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(Duration::from_millis(settings.database_acquire_timeout_ms))
}

/// The channel every writer notifies after committing something the api shows, so each api replica drops its
/// hot copy at once instead of after its hot-cache period.
pub const DATA_CHANGED_CHANNEL: &str = "hangang_data_changed";

/// Tells the api that data changed: `what` names the writer (a source, `forecast`, `operator`). Inside a
/// transaction the notification is delivered when it commits, never for a rolled-back change.
pub async fn notify_data_changed<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    what: &str,
) -> sqlx::Result<()> {
    sqlx::query("select pg_notify($1, $2)")
        .bind(DATA_CHANGED_CHANNEL)
        .bind(what)
        .execute(executor)
        .await?;
    Ok(())
}

/// A database instant as a wire timestamp (whole seconds, UTC).
pub fn wire_time(instant: time::OffsetDateTime) -> Timestamp {
    Timestamp::from_unix_seconds(instant.unix_timestamp())
        .expect("database timestamps are in range")
}

/// A wire timestamp as a database instant.
pub fn db_time(instant: Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(instant.as_unix_seconds())
        .expect("wire timestamps are in range")
}

/// The SHA-256 of a text, in hex. Keys public-data text in `ingest.translation` (by its Korean source, so a
/// text that reappears reuses its translations) and fingerprints the curated reference file.
pub fn translation_key(source_text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(source_text.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}
