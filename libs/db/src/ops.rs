//! The `ops` schema's rollout records: one row per service process start and one per smoke check, written by
//! the system itself so "what ran where, and when?" is answered from records (`cargo xtask history` reads them
//! back). Recording never stands in a service's way: [`spawn_start_record`] writes in the background and only
//! logs a failure. Rows older than the retention period are deleted by the same writes.

use std::{collections::BTreeMap, time::Duration};

use contracts::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{db_time, wire_time};

/// How long a start record may take before the process stops waiting for it.
const START_RECORD_TIMEOUT: Duration = Duration::from_secs(10);

/// One process start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStart {
    pub service: String,
    pub release_id: String,
    pub source_commit: String,
    pub environment: String,
    /// The pod name in Kubernetes.
    pub host: String,
    pub pid: i32,
    pub started_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct ProcessStartRow {
    service: String,
    release_id: String,
    source_commit: String,
    environment: String,
    host: String,
    pid: i32,
    started_at: time::OffsetDateTime,
}

/// One check of a smoke run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeCheck {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    pub duration_ms: u64,
}

/// One smoke check of a release in an environment: its last round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeRun {
    /// Its row id (`ops.smoke_run.id`), how a promotion names the record it relied on; `None` before it is
    /// written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub release_id: String,
    pub environment: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub passed: bool,
    pub rounds: u32,
    pub checks: Vec<SmokeCheck>,
    /// The release each service reported, by service name.
    pub answered: BTreeMap<String, String>,
}

/// Everything in the `ops` schema, as `cargo xtask history --export-rollouts` writes it for a machine that
/// cannot reach the database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollouts {
    pub process_starts: Vec<ProcessStart>,
    pub smoke_runs: Vec<SmokeRun>,
}

/// Inserts `start` and deletes records older than `retention_days`.
pub async fn record_process_start(
    pool: &PgPool,
    start: &ProcessStart,
    retention_days: u32,
) -> sqlx::Result<()> {
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "insert into ops.process_start
             (service, release_id, source_commit, environment, host, pid, started_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&start.service)
    .bind(&start.release_id)
    .bind(&start.source_commit)
    .bind(&start.environment)
    .bind(&start.host)
    .bind(start.pid)
    .bind(db_time(start.started_at))
    .execute(&mut *transaction)
    .await?;
    sqlx::query(
        "delete from ops.process_start where started_at < now() - make_interval(days => $1)",
    )
    .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await
}

/// Records `start` in the background: a failure (PostgreSQL down, the table missing, a timeout) is logged
/// and changes nothing else, so a process always starts whether or not its record could be written.
pub fn spawn_start_record(
    pool: PgPool,
    start: ProcessStart,
    retention_days: u32,
) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move {
        let written = tokio::time::timeout(
            START_RECORD_TIMEOUT,
            record_process_start(&pool, &start, retention_days),
        )
        .await;
        match written {
            Ok(Ok(())) => {
                tracing::info!(release_id = %start.release_id, host = %start.host, "process start recorded");
                true
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot record this process start in ops.process_start; serving anyway");
                false
            }
            Err(_) => {
                tracing::warn!(
                    timeout_s = START_RECORD_TIMEOUT.as_secs(),
                    "recording this process start timed out; serving anyway"
                );
                false
            }
        }
    })
}

/// Inserts a smoke outcome and deletes outcomes older than `retention_days`.
pub async fn record_smoke_run(
    pool: &PgPool,
    run: &SmokeRun,
    retention_days: u32,
) -> sqlx::Result<()> {
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "insert into ops.smoke_run
             (release_id, environment, started_at, finished_at, passed, rounds, checks, answered)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&run.release_id)
    .bind(&run.environment)
    .bind(db_time(run.started_at))
    .bind(db_time(run.finished_at))
    .bind(run.passed)
    .bind(i32::try_from(run.rounds).unwrap_or(i32::MAX))
    .bind(sqlx::types::Json(&run.checks))
    .bind(sqlx::types::Json(&run.answered))
    .execute(&mut *transaction)
    .await?;
    sqlx::query("delete from ops.smoke_run where finished_at < now() - make_interval(days => $1)")
        .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await
}

#[derive(sqlx::FromRow)]
struct SmokeRunRow {
    id: i64,
    release_id: String,
    environment: String,
    started_at: time::OffsetDateTime,
    finished_at: time::OffsetDateTime,
    passed: bool,
    rounds: i32,
    checks: sqlx::types::Json<Vec<SmokeCheck>>,
    answered: sqlx::types::Json<BTreeMap<String, String>>,
}

/// Every rollout record, oldest first. A database no release has migrated yet (no `ops` tables) has none: it
/// is an environment where nothing of ours has run, not an error.
pub async fn rollouts(pool: &PgPool) -> sqlx::Result<Rollouts> {
    let (migrated,): (bool,) = sqlx::query_as(
        "select to_regclass('ops.process_start') is not null and to_regclass('ops.smoke_run') is not null",
    )
    .fetch_one(pool)
    .await?;
    if !migrated {
        return Ok(Rollouts::default());
    }
    let process_starts = sqlx::query_as::<_, ProcessStartRow>(
        "select service, release_id, source_commit, environment, host, pid, started_at
         from ops.process_start order by started_at, id",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| ProcessStart {
        service: row.service,
        release_id: row.release_id,
        source_commit: row.source_commit,
        environment: row.environment,
        host: row.host,
        pid: row.pid,
        started_at: wire_time(row.started_at),
    })
    .collect();
    let smoke_runs = sqlx::query_as::<_, SmokeRunRow>(
        "select id, release_id, environment, started_at, finished_at, passed, rounds, checks, answered
         from ops.smoke_run order by finished_at, id",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| SmokeRun {
        id: Some(row.id),
        release_id: row.release_id,
        environment: row.environment,
        started_at: wire_time(row.started_at),
        finished_at: wire_time(row.finished_at),
        passed: row.passed,
        rounds: u32::try_from(row.rounds).unwrap_or(0),
        checks: row.checks.0,
        answered: row.answered.0,
    })
    .collect();
    Ok(Rollouts { process_starts, smoke_runs })
}
