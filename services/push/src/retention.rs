//! How long push keeps its records: decisions (with their outbox rows and delivery attempts, which cascade)
//! and facts older than the retention period are deleted, in batches, so a year of alerts does not slow the
//! cool-down, an installation delete or a scrape. Alerts still pending are never deleted, whatever their age.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Rows deleted per statement, so a prune never holds long locks.
const BATCH: i64 = 5_000;

/// What one prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub decisions: u64,
    pub facts: u64,
}

/// Deletes decisions (and their outbox rows and attempts) and facts older than `days`.
pub async fn prune(pool: &PgPool, days: u32) -> sqlx::Result<Pruned> {
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    let decisions = delete_in_batches(
        pool,
        days,
        "delete from push.decision where decision_id in (
             select d.decision_id from push.decision d
             where d.decided_at < now() - make_interval(days => $1)
               and not exists (select 1 from push.outbox o
                               where o.decision_id = d.decision_id and o.status = 'pending')
             limit $2)",
    )
    .await?;
    let facts = delete_in_batches(
        pool,
        days,
        "delete from push.fact where fact_key in (
             select f.fact_key from push.fact f
             where f.received_at < now() - make_interval(days => $1)
               and not exists (select 1 from push.decision d where d.fact_key = f.fact_key)
             limit $2)",
    )
    .await?;
    Ok(Pruned { decisions, facts })
}

/// Runs `delete` (bound to `days` and [`BATCH`]) until it deletes less than a batch; returns the total.
async fn delete_in_batches(pool: &PgPool, days: i32, delete: &'static str) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let deleted =
            sqlx::query(delete).bind(days).bind(BATCH).execute(pool).await?.rows_affected();
        total += deleted;
        if deleted < BATCH as u64 {
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
                decisions = pruned.decisions,
                facts = pruned.facts,
                days,
                "pruned push records past their retention"
            ),
            Err(error) => tracing::warn!(%error, "push retention prune failed"),
        }
    })
    .await;
}
