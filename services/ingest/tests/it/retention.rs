//! History and runs past the retention are pruned, per item; what is younger, and a run a kept row names,
//! stays.

use contracts::freshness::SourceId;
use ingest::{retention, store::Peers};

use crate::support::{AFTERNOON, Harness};

#[tokio::test]
async fn history_and_runs_past_the_retention_are_pruned_and_the_rest_kept() {
    let harness = Harness::start(Peers::default()).await;
    // A run this June (inside 400 days) stores today's values.
    let kept_run = harness.run(SourceId::ParkingPortal, AFTERNOON).await.run_id;
    let kept_lots = harness.count("select count(*) from ingest.lot_observation").await;
    assert!(kept_lots > 0);
    let pool = &harness.database.pool;
    // Two runs from 500 days ago: one whose observations are as old, one a later observation still names.
    let (old_run, named_run): (i64, i64) = sqlx::query_as(
        "with runs as (
             insert into ingest.ingestion_run (source, started_at, finished_at, outcome, items)
             select 'parking_portal', now() - interval '500 days', now() - interval '500 days', 'ok', 1
             from generate_series(1, 2) returning run_id)
         select min(run_id), max(run_id) from runs",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    for statement in [
        "insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity, run_id)
         select lot_id, now() - make_interval(days => 400 + n), now(), 1, 10, $1
         from reference.lot cross join generate_series(1, 3) as n",
        "insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity, run_id)
         select lot_id, now() - interval '10 days', now(), 1, 10, $2 from reference.lot limit 1",
        "insert into ingest.congestion_observation (park_id, observed_at, fetched_at, level, run_id)
         select park_id, now() - interval '401 days', now(), 'normal', $1 from reference.park",
        "insert into ingest.weather_observation (park_id, observed_at, fetched_at, source, run_id)
         select park_id, now() - interval '401 days', now(), 'kma_forecast', $1 from reference.park",
        "insert into ingest.congestion_forecast_official (park_id, issued_at, target_at, level)
         select park_id, now() - interval '401 days', now() - interval '401 days', 'normal' from reference.park",
    ] {
        sqlx::query(statement).bind(old_run).bind(named_run).execute(pool).await.unwrap();
    }

    let pruned = retention::prune(pool, 400).await.unwrap();

    let (lots, parks) = (
        harness.count("select count(*) from reference.lot").await as u64,
        harness.count("select count(*) from reference.park").await as u64,
    );
    assert_eq!(pruned.observations, lots * 3 + parks * 3, "{pruned:?}");
    assert_eq!(pruned.runs, 1, "only the run no kept row names");
    assert_eq!(harness.count("select count(*) from ingest.lot_observation").await, kept_lots + 1);
    for table in ["congestion_observation", "weather_observation", "congestion_forecast_official"] {
        let old = format!(
            "select count(*) from ingest.{table} where now() - interval '400 days' > {}",
            if table == "congestion_forecast_official" { "issued_at" } else { "observed_at" }
        );
        assert_eq!(harness.count(&old).await, 0, "{table}");
    }
    let runs: Vec<i64> =
        sqlx::query_scalar("select run_id from ingest.ingestion_run order by run_id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(runs, vec![kept_run, named_run]);
    // Nothing more to do the second time.
    assert_eq!(retention::prune(pool, 400).await.unwrap(), retention::Pruned::default());
    harness.stop().await;
}
