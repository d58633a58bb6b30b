//! `cargo xtask bench forecast`: the two costs that grow with the data, on a real PostgreSQL.
//!
//! 1. History: every curated lot gets 90 days of simulated readings (five-minute steps, as ingest stores
//!    them); the first rollup folds all of it into the baselines. Baseline in the same run: a bare
//!    `group by` scan of the same rows, the floor any SQL rollup pays.
//! 2. Refresh: every lot × 4 horizons recomputed and stored, as after an ingest cycle (median of repeated
//!    runs). Baseline in the same run: the api's whole read of the forecast tables.
//!
//! Ends with `rollup <n> rows/s (<n> s for 10k lots x 90 days), refresh <n> ms for <n> lots`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::time::{Duration, Instant};

use contracts::Timestamp;
use forecast::{
    refresh,
    simulate::{self, Scenario},
};

const DAYS: u32 = 90;
const REFRESHES: usize = 15;

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database = migrate::testing::TestDatabase::create().await?;
    let pool = database.pool.clone();
    db::reference::sync(&pool, &db::reference::Reference::curated()?).await?;
    let lot_ids: Vec<(String,)> =
        sqlx::query_as("select lot_id from reference.lot order by lot_id").fetch_all(&pool).await?;

    // 90 days up to today 00:00 in Seoul.
    let today = Timestamp::now().as_unix_seconds();
    let midnight = today - (today + 9 * 3_600).rem_euclid(86_400);
    let start = Timestamp::from_unix_seconds(midnight - i64::from(DAYS) * 86_400)?;
    let now = Timestamp::from_unix_seconds(midnight)?;
    let lots = simulate::simulate(&Scenario { seed: 90, lots: lot_ids.len(), start, days: DAYS });
    let began = Instant::now();
    let mut rows = 0_usize;
    for ((lot_id,), lot) in lot_ids.iter().zip(&lots) {
        let times: Vec<_> = lot.readings.iter().map(|r| db::db_time(r.observed_at)).collect();
        let available: Vec<i32> = lot.readings.iter().map(|r| r.available as i32).collect();
        sqlx::query(
            "insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity)
             select $1, t, t, a, $4 from unnest($2::timestamptz[], $3::int4[]) as u(t, a)",
        )
        .bind(lot_id)
        .bind(&times)
        .bind(&available)
        .bind(lot.capacity as i32)
        .execute(&pool)
        .await?;
        rows += times.len();
    }
    sqlx::query("analyze ingest.lot_observation").execute(&pool).await?;
    sqlx::query(
        "insert into ingest.source_status (source, last_attempt_at, last_success_at, last_outcome)
         values ('parking_portal', $1, $1, 'ok')",
    )
    .bind(db::db_time(now))
    .execute(&pool)
    .await?;
    println!(
        "history: {} lots x {DAYS} days = {rows} readings (stored in {:.1} s)",
        lot_ids.len(),
        began.elapsed().as_secs_f64()
    );

    let began = Instant::now();
    sqlx::query(
        "select lot_id, extract(isodow from observed_at at time zone 'Asia/Seoul') >= 6, count(*), avg(available)
         from ingest.lot_observation group by 1, 2",
    )
    .fetch_all(&pool)
    .await?;
    let scan = began.elapsed();
    let began = Instant::now();
    refresh::roll_up(&pool, &[], now).await?;
    let rollup = began.elapsed();
    let rows_per_second = rows as f64 / rollup.as_secs_f64();
    let ten_thousand = 10_000.0 * f64::from(DAYS) * 288.0 / rows_per_second;

    let mut refreshes = Vec::new();
    let mut reads = Vec::new();
    let mut refreshed = refresh::Refreshed::default();
    for _ in 0..REFRESHES {
        let began = Instant::now();
        refreshed = refresh::refresh(&pool, &[], &[], now).await?;
        refreshes.push(began.elapsed());
        let began = Instant::now();
        sqlx::query("select * from forecast.lot_forecast").fetch_all(&pool).await?;
        sqlx::query("select * from forecast.park_forecast").fetch_all(&pool).await?;
        reads.push(began.elapsed());
    }
    let (refresh_median, read_median) = (median(refreshes), median(reads));

    println!();
    println!("{:<34} {:>12} {:>12} {:>8}", "measure", "time", "baseline", "ratio");
    println!(
        "{:<34} {:>10.0}ms {:>10.0}ms {:>7.1}x",
        "rollup of all history (first run)",
        ms(rollup),
        ms(scan),
        rollup.as_secs_f64() / scan.as_secs_f64()
    );
    println!(
        "{:<34} {:>10.1}ms {:>10.1}ms {:>7.1}x",
        format!("refresh {} lots x 4 horizons", refreshed.lots),
        ms(refresh_median),
        ms(read_median),
        refresh_median.as_secs_f64() / read_median.as_secs_f64()
    );
    println!(
        "(baselines: a bare group-by scan of the same rows; the api's read of the forecast tables)"
    );
    println!();
    println!(
        "rollup {rows_per_second:.0} rows/s ({ten_thousand:.1} s for 10k lots x {DAYS} days), refresh {:.1} ms for {} lots",
        ms(refresh_median),
        refreshed.lots
    );
    database.drop_now().await?;
    Ok(())
}
