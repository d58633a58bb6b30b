//! How long ingest keeps its history: observations (lots, congestion, weather), Seoul's official congestion
//! forecasts and runs older than the retention period are deleted hourly, in batches, so a year of collections
//! does not grow what a run, the snapshot or a forecast refresh reads. Each history table is pruned per item
//! through its primary key (item, time), never by a scan of the whole history; runs go after the observations
//! that name them, and a run some kept row still names is kept.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Rows deleted per item and statement, so a prune never holds long locks.
const BATCH_PER_ITEM: i64 = 2_000;
/// Runs deleted per statement.
const RUN_BATCH: i64 = 5_000;

/// What one prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub observations: u64,
    pub runs: u64,
}

/// Per item of `items` (`reference.lot` or `reference.park`, keyed by `key`), the oldest rows of `table`
/// older than the retention: the delete statement of one history table.
fn history_delete(table: &str, items: &str, key: &str, time: &str) -> String {
    format!(
        "delete from {table} h using (
             select i.{key} as item, old.{time} as at from {items} i
             cross join lateral (select {time} from {table} where {key} = i.{key}
                                 and {time} < now() - make_interval(days => $1)
                                 order by {time} limit $2) old
         ) doomed
         where h.{key} = doomed.item and h.{time} = doomed.at"
    )
}

/// Deletes history and runs older than `days`.
pub async fn prune(pool: &PgPool, days: u32) -> sqlx::Result<Pruned> {
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    let tables = [
        history_delete("ingest.lot_observation", "reference.lot", "lot_id", "observed_at"),
        history_delete("ingest.congestion_observation", "reference.park", "park_id", "observed_at"),
        history_delete("ingest.weather_observation", "reference.park", "park_id", "observed_at"),
        history_delete(
            "ingest.congestion_forecast_official",
            "reference.park",
            "park_id",
            "issued_at",
        ),
    ];
    let mut pruned = Pruned::default();
    for delete in tables {
        pruned.observations += delete_until_done(pool, days, &delete, BATCH_PER_ITEM).await?;
    }
    // The observations of a run are never newer than its start, so by now none of an old run's are left;
    // the checks (indexed) keep a run some row still names rather than fail the prune.
    pruned.runs = delete_until_done(
        pool,
        days,
        "delete from ingest.ingestion_run r where r.run_id in (
             select run_id from ingest.ingestion_run
             where started_at < now() - make_interval(days => $1) and finished_at is not null
             order by run_id limit $2)
           and not exists (select 1 from ingest.lot_observation o where o.run_id = r.run_id)
           and not exists (select 1 from ingest.congestion_observation o where o.run_id = r.run_id)
           and not exists (select 1 from ingest.weather_observation o where o.run_id = r.run_id)",
        RUN_BATCH,
    )
    .await?;
    Ok(pruned)
}

/// Runs `delete` (bound to `days` and `batch`) until it deletes nothing; returns the total.
async fn delete_until_done(
    pool: &PgPool,
    days: i32,
    delete: &str,
    batch: i64,
) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        // The statements are this module's own, built from fixed table and column names; values are bound.
        let deleted = sqlx::query(sqlx::AssertSqlSafe(delete.to_owned()))
            .bind(days)
            .bind(batch)
            .execute(pool)
            .await?
            .rows_affected();
        total += deleted;
        if deleted == 0 {
            return Ok(total);
        }
    }
}

/// Prunes every `every` until `shutdown` (every replica may; the deletes are idempotent).
pub async fn keep_pruned(pool: PgPool, days: u32, every: Duration, shutdown: CancellationToken) {
    server::every(every, &shutdown, || async {
        match prune(&pool, days).await {
            Ok(pruned) if pruned == Pruned::default() => {}
            Ok(pruned) => tracing::info!(
                observations = pruned.observations,
                runs = pruned.runs,
                days,
                "pruned ingest history past its retention"
            ),
            Err(error) => tracing::warn!(%error, "ingest retention prune failed"),
        }
    })
    .await;
}
