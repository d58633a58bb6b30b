//! `cargo xtask bench growth`: the hot operations at a year of data against the same operations at a day.
//!
//! Two databases are seeded at production rates — 30 lots every 2 minutes, 11 parks every 5 minutes
//! (congestion and weather, with Seoul's official 12-hour forecast), a run per collection, 100,000
//! installations with preferences, 20,000 alerts a day with their decisions, outbox rows and delivery
//! attempts, issued forecast horizons every cycle (forecast keeps 90 days of them) — one with a day of it, one
//! with a year, nothing pruned. Then each operation runs the same way in both (median of 15 cycles after one
//! that warms the caches): the snapshot rebuild, an ingest run's store step (a parking run and a city-data
//! run), `SubmitFacts` with 1,000 candidates, an installation delete (of one with the same 20 alerts of its
//! own in both, so the tables' size is compared, not the installation's), a forecast refresh after a cycle.
//! The baseline is the day database, measured in the same run; every ratio must be at most 2×.
//!
//! Ends with one line per operation: `<operation> day <ms> ms, year <ms> ms, ratio <r>x`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::time::{Duration, Instant};

use anyhow::Context as _;
use contracts::{
    Timestamp,
    fact::{Fact, FactKind},
    freshness::SourceId,
    v2::CongestionLevel,
};
use ingest::{
    batch::{Batch, CongestionReading, LotReading},
    leadership::Lock,
    store::{self, Peers},
};
use migrate::testing::TestDatabase;
use sqlx::PgPool;

/// Alerts sent a day (a fifth of the installations).
const ALERTS_PER_DAY: i64 = 20_000;
const INSTALLATIONS: i64 = 100_000;
/// Installations watching the lot the `SubmitFacts` operation is about.
const CANDIDATES: i64 = 1_000;
const WATCHED_LOT: &str = "yeouido-2";
/// Cycles measured in each database, after one that warms its caches (not counted).
const REPEATS: usize = 15;
/// The largest year/day ratio accepted.
const MAX_RATIO: f64 = 2.0;

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// The median of the measured cycles: the first, which warmed the caches, is left out.
fn median(mut values: Vec<Duration>) -> Duration {
    values.remove(0);
    values.sort();
    values[values.len() / 2]
}

fn at(seconds: i64) -> anyhow::Result<Timestamp> {
    Ok(Timestamp::from_unix_seconds(seconds)?)
}

/// Seeds `days` of history ending at `now` (seconds), set-based; foreign keys are not checked while seeding
/// (every id comes from the reference data), as a restore would load them.
async fn seed(pool: &PgPool, days: i64, now: i64) -> anyhow::Result<()> {
    db::reference::sync(pool, &db::reference::Reference::curated()?).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("set local session_replication_role = replica").execute(&mut *tx).await?;
    let start = now - days * 86_400;
    let statements: [(&str, &str); 15] = [
        ("runs", "insert into ingest.ingestion_run (source, started_at, finished_at, outcome, items)
                  select source, t, t + interval '2 seconds', 'ok', items
                  from (values ('parking_portal', 120, 30), ('seoul_citydata', 300, 11)) as s(source, every, items)
                  cross join lateral generate_series(to_timestamp($1), to_timestamp($2) - make_interval(secs => every), make_interval(secs => every)) as t"),
        ("lot history", "insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity)
                  select l.lot_id, t, t, (extract(epoch from t)::int8 / 120 * 7 + l.sort_order * 13) % 300, 300
                  from reference.lot l
                  cross join generate_series(to_timestamp($1), to_timestamp($2) - interval '2 minutes', interval '2 minutes') as t"),
        ("congestion history", "insert into ingest.congestion_observation (park_id, observed_at, fetched_at, level, population_min, population_max)
                  select p.park_id, t, t, (array['relaxed', 'normal', 'slightly_crowded', 'crowded'])[1 + (extract(epoch from t)::int8 / 3600) % 4], 1000, 2000
                  from reference.park p
                  cross join generate_series(to_timestamp($1), to_timestamp($2) - interval '5 minutes', interval '5 minutes') as t"),
        ("weather history", "insert into ingest.weather_observation (park_id, observed_at, fetched_at, source, temperature_c, precipitation, sky, rain_chance_percent)
                  select p.park_id, t, t, 'seoul_citydata', 20, 'none', 'clear', 10
                  from reference.park p
                  cross join generate_series(to_timestamp($1), to_timestamp($2) - interval '5 minutes', interval '5 minutes') as t"),
        ("official forecasts", "insert into ingest.congestion_forecast_official (park_id, issued_at, target_at, level)
                  select p.park_id, t, date_trunc('hour', t) + make_interval(hours => h), 'normal'
                  from reference.park p
                  cross join generate_series(to_timestamp($1), to_timestamp($2) - interval '5 minutes', interval '5 minutes') as t
                  cross join generate_series(1, 12) as h"),
        ("installations", "insert into push.installation (installation_id, secret_hash, apns_token, apns_environment, locale, app_version)
                  select 'bench-' || n, $3, lpad(to_hex(n), 64, 'a'), 'production', 'ko-KR', '2.4.0 (431)'
                  from generate_series(1, $4) as n"),
        // The first CANDIDATES installations watch the operation's lot; the others one of the other lots.
        ("preferences", "insert into push.preference (installation_id, position, target_kind, target_id, signal, threshold)
                  select 'bench-' || n, 0, 'lot',
                         case when n <= $5 then $6 else (select lot_id from reference.lot where lot_id <> $6 order by lot_id offset n % 29 limit 1) end,
                         'lot_available_below', 50
                  from generate_series(1, $4) as n"),
        ("facts", "insert into push.fact (fact_key, kind, park_id, lot_id, observed_at, body)
                  select 'seed:' || l.lot_id || ':' || extract(epoch from t)::int8, 'lot_availability', l.park_id, l.lot_id, t, '{}'
                  from reference.lot l
                  cross join generate_series(to_timestamp($1), to_timestamp($2) - interval '1 hour', interval '1 hour') as t"),
        ("decisions", "insert into push.decision (fact_key, installation_id, position, signal, decision, decided_at, target_kind, target_id)
                  select 'seed:' || p.target_id || ':' || extract(epoch from date_trunc('hour', t))::int8, p.installation_id, 0,
                         'lot_available_below', 'push_now', t, 'lot', p.target_id
                  from generate_series(0, ($2 - $1) / 86400 * $7 - 1) as k
                  cross join lateral (select to_timestamp($1 + k * (86400.0 / $7)) as t) as moment
                  join push.preference p on p.installation_id = 'bench-' || (1 + (k * 7919) % $4)"),
        // The installations the delete operation removes: the same own history in both databases (20 alerts of
        // the last day), so the comparison is of the tables' size, not of theirs.
        ("deleted installations", "insert into push.installation (installation_id, secret_hash, apns_token, apns_environment, locale, app_version)
                  select 'gone-' || n, $3, lpad(to_hex(n), 64, 'b'), 'production', 'ko-KR', '2.4.0 (431)'
                  from generate_series(1, $8) as n"),
        ("their preferences", "insert into push.preference (installation_id, position, target_kind, target_id, signal, threshold)
                  select 'gone-' || n, 0, 'lot', (select lot_id from reference.lot where lot_id <> $6 order by lot_id limit 1),
                         'lot_available_below', 50
                  from generate_series(1, $8) as n"),
        ("their decisions", "insert into push.decision (fact_key, installation_id, position, signal, decision, decided_at, target_kind, target_id)
                  select 'seed:' || p.target_id || ':' || j, p.installation_id, 0, 'lot_available_below', 'push_now',
                         to_timestamp($2) - make_interval(mins => 60 * j), 'lot', p.target_id
                  from push.preference p cross join generate_series(1, 20) as j
                  where p.installation_id like 'gone-%'"),
        ("outbox", "insert into push.outbox (decision_id, installation_id, collapse_id, payload, expires_at, status, attempts, next_attempt_at, sent_at, created_at)
                  select decision_id, installation_id, 'lot:' || target_id || ':lot_available_below', '{\"aps\": {}}',
                         decided_at + interval '30 minutes', 'sent', 1, decided_at, decided_at + interval '1 second', decided_at
                  from push.decision"),
        ("delivery attempts", "insert into push.delivery_attempt (outbox_id, attempted_at, http_status, apns_id)
                  select outbox_id, sent_at, 200, '00000000-0000-4000-8000-' || lpad(to_hex(outbox_id), 12, '0')
                  from push.outbox"),
        ("issued forecasts", "insert into forecast.issued (lot_id, issued_at, horizon_minutes, target_at, p10, p50, p90, risk_full, actual, scored_at)
                  select l.lot_id, t, h, t + make_interval(mins => h), 10, 50, 90, 0.1, 55, t + make_interval(mins => h + 5)
                  from reference.lot l
                  cross join generate_series(to_timestamp(greatest($1, $2 - 90 * 86400)), to_timestamp($2) - interval '2 hours', interval '2 minutes') as t
                  cross join unnest(array[15, 30, 60, 120]) as h"),
    ];
    for (what, sql) in statements {
        let started = Instant::now();
        let done = sqlx::query(sql)
            .bind(start)
            .bind(now)
            .bind(push::secret::hash("bench-secret"))
            .bind(INSTALLATIONS)
            .bind(CANDIDATES)
            .bind(WATCHED_LOT)
            .bind(ALERTS_PER_DAY)
            .bind(REPEATS as i64 + 1)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("seeding {what}"))?;
        println!(
            "  {what}: {} rows in {:.1} s",
            done.rows_affected(),
            started.elapsed().as_secs_f64()
        );
    }
    tx.commit().await?;
    // Forecast's rollup folds the seeded history once, as a running system would have.
    let started = Instant::now();
    forecast::refresh::refresh(pool, &[], &[], at(now)?).await?;
    println!("  first forecast refresh: {:.1} s", started.elapsed().as_secs_f64());
    sqlx::query("vacuum analyze").execute(pool).await?;
    Ok(())
}

/// One operation's timings in one database.
struct Timings {
    snapshot: Duration,
    parking_store: Duration,
    citydata_store: Duration,
    submit_facts: Duration,
    installation_delete: Duration,
    forecast_refresh: Duration,
}

async fn time_operations(pool: &PgPool, now: i64) -> anyhow::Result<Timings> {
    let lock = Lock::try_acquire(pool, Duration::from_secs(30))
        .await?
        .context("the benchmark's database has another collection leader")?;
    let session = lock.leadership.session;
    let lots: Vec<(String,)> =
        sqlx::query_as("select lot_id from reference.lot order by lot_id").fetch_all(pool).await?;
    let parks: Vec<(String,)> =
        sqlx::query_as("select park_id from reference.park order by park_id")
            .fetch_all(pool)
            .await?;
    let lot_ids: Vec<String> = lots.into_iter().map(|(id,)| id).collect();
    let park_ids: Vec<String> = parks.into_iter().map(|(id,)| id).collect();
    let peers = Peers { forecast: true, push: true };
    let (mut snapshot, mut parking, mut citydata, mut submit, mut delete, mut refresh) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let installations: Vec<(String,)> = sqlx::query_as(
        "select installation_id from push.installation where installation_id like 'gone-%'
         order by installation_id limit $1",
    )
    .bind(REPEATS as i64 + 1)
    .fetch_all(pool)
    .await?;
    anyhow::ensure!(installations.len() == REPEATS + 1, "too few installations to delete");
    for (repeat, (installation_id,)) in installations.iter().enumerate() {
        // Each repeat is a later collection cycle, two minutes on.
        let cycle = now + repeat as i64 * 120;
        let moment = at(cycle)?;

        let run_id = store::start_run(pool, SourceId::ParkingPortal, moment).await?;
        let batch = Batch {
            lots: lot_ids
                .iter()
                .enumerate()
                .map(|(n, lot_id)| LotReading {
                    lot_id: lot_id.clone(),
                    observed_at: moment,
                    available: Some(((repeat * 37 + n * 11) % 300) as u32),
                    capacity: Some(300),
                    not_linked: false,
                    reported_available: None,
                })
                .collect(),
            ..Batch::default()
        };
        let started = Instant::now();
        store::finish_run(
            pool,
            session,
            SourceId::ParkingPortal,
            run_id,
            (moment, moment),
            Ok(batch),
            peers,
        )
        .await?;
        parking.push(started.elapsed());

        let run_id = store::start_run(pool, SourceId::SeoulCitydata, moment).await?;
        let batch = Batch {
            congestion: park_ids
                .iter()
                .map(|park_id| CongestionReading {
                    park_id: park_id.clone(),
                    observed_at: moment,
                    level: if repeat % 2 == 0 {
                        CongestionLevel::Crowded
                    } else {
                        CongestionLevel::Relaxed
                    },
                    message_ko: None,
                    population_min: Some(1_000),
                    population_max: Some(2_000),
                })
                .collect(),
            ..Batch::default()
        };
        let started = Instant::now();
        store::finish_run(
            pool,
            session,
            SourceId::SeoulCitydata,
            run_id,
            (moment, moment),
            Ok(batch),
            peers,
        )
        .await?;
        citydata.push(started.elapsed());

        let started = Instant::now();
        forecast::refresh::refresh(pool, &lot_ids, &park_ids, moment).await?;
        refresh.push(started.elapsed());

        let started = Instant::now();
        readmodel::snapshot::load(pool, moment).await?;
        snapshot.push(started.elapsed());

        // A drop below the threshold for the watched lot: 1,000 candidates, each with its cool-down read.
        let fact = Fact {
            lot_id: Some(WATCHED_LOT.into()),
            observed_at: Some(moment),
            fetched_at: Some(moment),
            previous_value: Some(80),
            current_value: Some(20),
            ..Fact::new(
                format!("bench:{WATCHED_LOT}:{cycle}"),
                FactKind::LotAvailability,
                "yeouido".into(),
            )
        };
        let started = Instant::now();
        let submitted = push::pipeline::submit(pool, None, &[fact], moment).await?;
        submit.push(started.elapsed());
        anyhow::ensure!(submitted.decisions as i64 == CANDIDATES, "{submitted:?}");

        let started = Instant::now();
        push::installations::delete(pool, installation_id, "bench-secret").await?;
        delete.push(started.elapsed());
    }
    lock.release().await;
    Ok(Timings {
        snapshot: median(snapshot),
        parking_store: median(parking),
        citydata_store: median(citydata),
        submit_facts: median(submit),
        installation_delete: median(delete),
        forecast_refresh: median(refresh),
    })
}

async fn measure(days: i64, now: i64) -> anyhow::Result<Timings> {
    println!("seeding {days} day(s) of data:");
    let database = TestDatabase::create().await?;
    // The services' own pool: their session settings (statement timeout, no JIT) are part of what is measured.
    let settings = db::DatabaseSettings {
        database_url: settings::DATABASE_URL.parse_url(&database.url)?,
        database_max_connections: 8,
        database_acquire_timeout_ms: 2_000,
        database_statement_timeout_ms: 0, // seeding a year takes minutes
        database_password_file: None,
    };
    let pool = db::connect(&settings)?;
    let measured = async {
        let started = Instant::now();
        seed(&pool, days, now).await?;
        println!("  seeded in {:.0} s", started.elapsed().as_secs_f64());
        time_operations(&pool, now).await
    }
    .await;
    pool.close().await;
    database.drop_now().await?;
    measured
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Whole minutes, so the seeded cycles and the measured ones fall on the same grid.
    let now = Timestamp::now().as_unix_seconds() / 600 * 600;
    let day = measure(1, now).await?;
    let year = measure(365, now).await?;
    let rows = [
        ("snapshot rebuild", day.snapshot, year.snapshot),
        ("ingest store step (parking, 30 lots)", day.parking_store, year.parking_store),
        ("ingest store step (city data, 11 parks)", day.citydata_store, year.citydata_store),
        ("SubmitFacts (1,000 candidates)", day.submit_facts, year.submit_facts),
        ("installation delete", day.installation_delete, year.installation_delete),
        ("forecast refresh (a cycle)", day.forecast_refresh, year.forecast_refresh),
    ];
    println!();
    let mut worst: f64 = 0.0;
    for (operation, day, year) in rows {
        let ratio = year.as_secs_f64() / day.as_secs_f64().max(1e-6);
        worst = worst.max(ratio);
        println!("{operation} day {:.2} ms, year {:.2} ms, ratio {ratio:.2}x", ms(day), ms(year));
    }
    anyhow::ensure!(
        worst <= MAX_RATIO,
        "an operation grows with history: worst ratio {worst:.2}x > {MAX_RATIO}x"
    );
    println!("every year/day ratio is at most {MAX_RATIO}x (worst {worst:.2}x)");
    Ok(())
}
