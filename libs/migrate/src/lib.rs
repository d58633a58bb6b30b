//! The database's migrations and applying them: every migration as plain SQL in `migrations/` (the one place),
//! embedded as [`MIGRATOR`], and [`migrate`], which `hangang-api migrate` (the migrate Job) runs. Also
//! throwaway migrated databases for tests ([`testing`]).
//!
//! A crate of its own so that only what applies migrations embeds them: adding a migration rebuilds this crate
//! and the api, not every service (the workers' binaries stay byte-identical across a migration-only release).
//!
//! [`migrate`] tolerates a database that is ahead of this release by expand migrations only, so a rollback to an
//! older release works after a newer one added columns or tables. A newer release's migrations are unknown to
//! an older binary, so each `migrate` records the kind of every migration it knows in `ops.migration`
//! (`db::migration_kind`, judged from the SQL). An older release reads those records for the versions it does
//! not know: all expand → it migrates, saying so in its log; any contract, or any it cannot find a record for →
//! it refuses, naming them, and changes nothing. sqlx holds a PostgreSQL advisory lock while it applies, so
//! concurrent migrate Jobs wait instead of racing, and re-running is a no-op.

pub mod roles;
pub mod testing;

use std::{borrow::Cow, fmt};

use anyhow::Context;
use db::{
    migration_kind::{self, Kind},
    reference,
};
use sqlx::{PgPool, migrate::Migrator};

/// Every migration, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// An applied migration this release does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ahead {
    pub version: i64,
    pub description: String,
    /// As recorded by the release that applied it; `None` when nothing recorded it.
    pub kind: Option<Kind>,
}

impl fmt::Display for Ahead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.map_or("kind not recorded", Kind::as_str);
        write!(f, "{}_{} ({kind})", self.version, self.description.replace(' ', "_"))
    }
}

/// Why this release refuses to migrate.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database is ahead of this release by migrations it cannot run against: {}; roll forward instead \
     (a rollback across a contract migration cannot work)",
    list(.0)
)]
pub struct AheadByContract(pub Vec<Ahead>);

fn list(ahead: &[Ahead]) -> String {
    ahead.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// What `migrate` did.
#[derive(Debug)]
pub struct MigrateReport {
    pub reference: reference::SyncReport,
    /// Expand migrations of a newer release the database already has (empty normally).
    pub ahead: Vec<Ahead>,
}

/// Applies pending migrations (under sqlx's advisory lock), records every migration's kind, and syncs the
/// curated reference data, so a migrated database always holds the reference data of its release.
/// `release_id` is recorded beside the kinds this release judged.
pub async fn migrate(pool: &PgPool, release_id: &str) -> anyhow::Result<MigrateReport> {
    let ahead = ahead_of_this_release(pool).await?;
    let refused: Vec<Ahead> =
        ahead.iter().filter(|ahead| ahead.kind != Some(Kind::Expand)).cloned().collect();
    if !refused.is_empty() {
        return Err(AheadByContract(refused).into());
    }
    if ahead.is_empty() {
        MIGRATOR.run(pool).await.context("failed to apply migrations")?;
    } else {
        tracing::warn!(
            ahead = %list(&ahead),
            "the database is ahead of this release by expand migrations only (a rollback); their additions \
             are unused by this release, migrating"
        );
        let tolerant = Migrator {
            migrations: Cow::Borrowed(&MIGRATOR.migrations),
            ignore_missing: true,
            ..Migrator::DEFAULT
        };
        tolerant.run(pool).await.context("failed to apply migrations")?;
    }
    record_kinds(pool, release_id).await.context("failed to record the migrations' kinds")?;
    let curated =
        reference::Reference::curated().context("the curated reference file is invalid")?;
    let reference =
        reference::sync(pool, &curated).await.context("failed to sync reference data")?;
    Ok(MigrateReport { reference, ahead })
}

/// The applied migrations this release's binary does not embed, with their recorded kinds.
pub async fn ahead_of_this_release(pool: &PgPool) -> anyhow::Result<Vec<Ahead>> {
    let (has_history, has_kinds): (bool, bool) = sqlx::query_as(
        "select to_regclass('_sqlx_migrations') is not null, to_regclass('ops.migration') is not null",
    )
    .fetch_one(pool)
    .await
    .context("cannot reach PostgreSQL")?;
    if !has_history {
        return Ok(Vec::new()); // a new database
    }
    let applied: Vec<(i64, String)> = sqlx::query_as(
        "select version, description from _sqlx_migrations where success order by version",
    )
    .fetch_all(pool)
    .await?;
    let unknown: Vec<(i64, String)> = applied
        .into_iter()
        .filter(|(version, _)| MIGRATOR.iter().all(|known| known.version != *version))
        .collect();
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let versions: Vec<i64> = unknown.iter().map(|(version, _)| *version).collect();
    let kinds: Vec<(i64, String)> = if has_kinds {
        sqlx::query_as("select version, kind from ops.migration where version = any($1)")
            .bind(&versions)
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    Ok(unknown
        .into_iter()
        .map(|(version, description)| Ahead {
            version,
            description,
            kind: kinds
                .iter()
                .find(|(recorded, _)| *recorded == version)
                .and_then(|(_, kind)| Kind::parse(kind)),
        })
        .collect())
}

/// Records the kind of every migration this release embeds (a migration's kind never changes once recorded).
async fn record_kinds(pool: &PgPool, release_id: &str) -> sqlx::Result<()> {
    let (mut versions, mut descriptions, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
    for migration in MIGRATOR.iter() {
        versions.push(migration.version);
        descriptions.push(migration.description.to_string());
        kinds.push(migration_kind::kind_or_contract(migration.sql.as_str()).as_str());
    }
    sqlx::query(
        "insert into ops.migration (version, description, kind, recorded_by_release)
         select version, description, kind, $4
         from unnest($1::bigint[], $2::text[], $3::text[]) as given (version, description, kind)
         on conflict (version) do nothing",
    )
    .bind(&versions)
    .bind(&descriptions)
    .bind(&kinds)
    .bind(release_id)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;

    #[test]
    fn every_shipped_migration_is_judged() {
        for migration in MIGRATOR.iter() {
            let judged = migration_kind::judge(migration.sql.as_str());
            assert!(judged.is_ok(), "{}: {judged:?}", migration.description);
        }
    }

    /// Makes the database look migrated by a newer release: one more applied migration, recorded with `kind`.
    async fn newer_release_applied(pool: &PgPool, version: i64, kind: Option<&str>) {
        sqlx::query(
            "insert into _sqlx_migrations (version, description, success, checksum, execution_time)
             values ($1, 'from a newer release', true, '\\x00', 1)",
        )
        .bind(version)
        .execute(pool)
        .await
        .unwrap();
        if let Some(kind) = kind {
            sqlx::query(
                "insert into ops.migration (version, description, kind, recorded_by_release)
                 values ($1, 'from a newer release', $2, 'newer')",
            )
            .bind(version)
            .bind(kind)
            .execute(pool)
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn every_known_migration_has_its_kind_recorded() {
        let database = TestDatabase::create().await.unwrap();
        let recorded: Vec<(i64, String, String)> = sqlx::query_as(
            "select version, kind, recorded_by_release from ops.migration order by version",
        )
        .fetch_all(&database.pool)
        .await
        .unwrap();
        assert_eq!(recorded.len(), MIGRATOR.iter().count());
        assert!(recorded.iter().all(|(_, kind, release)| kind == "expand" && release == "test"));
        database.drop_now().await.unwrap();
    }

    #[tokio::test]
    async fn a_database_ahead_by_expand_migrations_is_migrated_and_said_so() {
        let database = TestDatabase::create().await.unwrap();
        newer_release_applied(&database.pool, 20_991_231_000_001, Some("expand")).await;
        let report = migrate(&database.pool, "older").await.unwrap();
        assert_eq!(
            report.ahead,
            [Ahead {
                version: 20_991_231_000_001,
                description: "from a newer release".to_owned(),
                kind: Some(Kind::Expand)
            }]
        );
        database.drop_now().await.unwrap();
    }

    #[tokio::test]
    async fn a_database_ahead_by_a_contract_or_unrecorded_migration_is_refused_by_name() {
        let database = TestDatabase::create().await.unwrap();
        newer_release_applied(&database.pool, 20_991_231_000_001, Some("expand")).await;
        newer_release_applied(&database.pool, 20_991_231_000_002, Some("contract")).await;
        newer_release_applied(&database.pool, 20_991_231_000_003, None).await;
        let error = migrate(&database.pool, "older").await.unwrap_err();
        let refused = error.downcast_ref::<AheadByContract>().expect("refused as ahead");
        let named: Vec<String> = refused.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            named,
            [
                "20991231000002_from_a_newer_release (contract)",
                "20991231000003_from_a_newer_release (kind not recorded)"
            ]
        );
        database.drop_now().await.unwrap();
    }
}
