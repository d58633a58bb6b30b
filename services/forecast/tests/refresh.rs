//! Refresh against a real PostgreSQL: history folds into baselines once, forecasts are stored with their
//! evidence, and issued horizons are scored when their time comes.

use contracts::Timestamp;
use forecast::refresh::{self, Refreshed};
use migrate::testing::TestDatabase;

const LOT: &str = "gwangnaru-1-2";
const CAPACITY: i32 = 200;

fn kst(text: &str) -> Timestamp {
    contracts::seoul::instant(text.parse().unwrap()).unwrap()
}

/// A lot that empties through the morning every day: full capacity at 08:00, down to 20 by 14:00.
fn available_at(instant: Timestamp) -> i32 {
    let local = contracts::seoul::datetime(instant);
    let minutes = i32::from(local.hour()) * 60 + i32::from(local.minute());
    let progress = ((minutes - 8 * 60) as f64 / (6.0 * 60.0)).clamp(0.0, 1.0);
    (f64::from(CAPACITY) - progress * f64::from(CAPACITY - 20)).round() as i32
}

fn plus(instant: Timestamp, seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(instant.as_unix_seconds() + seconds).unwrap()
}

async fn observe(database: &TestDatabase, from: Timestamp, until: Timestamp) {
    let mut at = from;
    while at <= until {
        sqlx::query(
            "insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity)
             values ($1, $2, $2, $3, $4) on conflict do nothing",
        )
        .bind(LOT)
        .bind(db::db_time(at))
        .bind(available_at(at))
        .bind(CAPACITY)
        .execute(&database.pool)
        .await
        .unwrap();
        at = plus(at, 5 * 60);
    }
    sqlx::query(
        "insert into ingest.source_status (source, last_attempt_at, last_success_at, last_outcome)
         values ('parking_portal', $1, $1, 'ok')
         on conflict (source) do update set last_attempt_at = $1, last_success_at = $1, consecutive_failures = 0",
    )
    .bind(db::db_time(until))
    .execute(&database.pool)
    .await
    .unwrap();
}

async fn setup() -> TestDatabase {
    let database = TestDatabase::create().await.unwrap();
    db::reference::sync(&database.pool, &db::reference::Reference::curated().unwrap())
        .await
        .unwrap();
    database
}

async fn baseline_samples(database: &TestDatabase) -> i64 {
    let (n,): (Option<i64>,) =
        sqlx::query_as("select sum(n)::int8 from forecast.baseline where lot_id = $1")
            .bind(LOT)
            .fetch_one(&database.pool)
            .await
            .unwrap();
    n.unwrap_or(0)
}

#[tokio::test]
async fn a_refresh_stores_a_forecast_that_follows_the_history() {
    let database = setup().await;
    // Three weeks of mornings, then today up to 10:00 (a Wednesday).
    let now = kst("2026-06-17T10:00");
    observe(&database, kst("2026-05-27T06:00"), now).await;

    let refreshed = refresh::refresh(&database.pool, &[LOT.to_owned()], &[], now).await.unwrap();
    assert_eq!(refreshed, Refreshed { lots: 1, parks: 0, scored: 0 }, "only the lot named");

    let (based_on, capacity, horizons, confidence, reasons): (
        Option<time::OffsetDateTime>,
        Option<i32>,
        serde_json::Value,
        Option<String>,
        Vec<String>,
    ) = sqlx::query_as(
        "select based_on_observed_at, capacity, horizons, confidence, reasons from forecast.lot_forecast where lot_id = $1",
    )
    .bind(LOT)
    .fetch_one(&database.pool)
    .await
    .unwrap();
    assert_eq!(based_on.map(db::wire_time), Some(now));
    assert_eq!(capacity, Some(CAPACITY));
    assert!(confidence.is_some(), "a lot with weeks of history gets a confidence");
    assert!(!reasons.is_empty());
    let horizons = horizons.as_array().unwrap();
    assert!(!horizons.is_empty());
    // Two hours out the history says the lot keeps emptying: the median must be well below now's count.
    let two_hours =
        horizons.iter().find(|h| h["horizon_minutes"] == 120).expect("a 120-minute horizon");
    let expected = available_at(plus(now, 2 * 3_600));
    let p50 = two_hours["p50"].as_i64().unwrap() as i32;
    assert!((p50 - expected).abs() <= 15, "p50 {p50} should be near the usual {expected}");
    assert!(two_hours["p10"].as_i64().unwrap() <= i64::from(p50));
    assert!(two_hours["p90"].as_i64().unwrap() >= i64::from(p50));

    database.drop_now().await.unwrap();
}

#[tokio::test]
async fn history_folds_in_once_and_horizons_are_scored_when_due() {
    let database = setup().await;
    let now = kst("2026-06-17T10:00");
    observe(&database, kst("2026-06-10T06:00"), now).await;
    refresh::refresh(&database.pool, &[LOT.to_owned()], &[], now).await.unwrap();
    let folded = baseline_samples(&database).await;
    assert!(folded > 0);

    // Horizons issued past the retention are deleted when their lot is refreshed.
    sqlx::query(
        "insert into forecast.issued (lot_id, issued_at, horizon_minutes, target_at, p10, p50, p90, risk_full, actual, scored_at)
         values ($1, $2, 15, $2, 1, 2, 3, 0, 2, $2)",
    )
    .bind(LOT)
    .bind(db::db_time(plus(now, -100 * 86_400)))
    .execute(&database.pool)
    .await
    .unwrap();

    // Repeating the refresh adds nothing: the watermark keeps observations from counting twice.
    refresh::refresh(&database.pool, &[LOT.to_owned()], &[], now).await.unwrap();
    assert_eq!(baseline_samples(&database).await, folded);
    let (expired,): (i64,) =
        sqlx::query_as("select count(*) from forecast.issued where issued_at < $1")
            .bind(db::db_time(plus(now, -90 * 86_400)))
            .fetch_one(&database.pool)
            .await
            .unwrap();
    assert_eq!(expired, 0, "horizons older than the retention are gone");

    // An hour later, with the hour observed, the 15-to-60-minute horizons issued at 10:00 are scored.
    let later = plus(now, 3_600);
    observe(&database, plus(now, 5 * 60), later).await;
    let refreshed = refresh::refresh(&database.pool, &[LOT.to_owned()], &[], later).await.unwrap();
    assert!(refreshed.scored > 0, "{refreshed:?}");
    assert_eq!(
        baseline_samples(&database).await,
        folded + 12,
        "exactly the twelve new observations"
    );
    let (accuracy,): (Option<serde_json::Value>,) =
        sqlx::query_as("select accuracy from forecast.lot_forecast where lot_id = $1")
            .bind(LOT)
            .fetch_one(&database.pool)
            .await
            .unwrap();
    let accuracy = accuracy.expect("scored forecasts give an accuracy");
    // Stored in the contract's shape: the api serves it as is.
    let accuracy: db::forecasts::Accuracy = serde_json::from_value(accuracy).unwrap();
    assert_eq!(u64::from(accuracy.scored_forecasts), refreshed.scored);
    assert!(!accuracy.mean_absolute_error.is_empty());
    assert!((0.0..=1.0).contains(&accuracy.interval_coverage));

    database.drop_now().await.unwrap();
}

#[tokio::test]
async fn baselines_are_keyed_by_seoul_day_type_and_quarter_hour() {
    let database = setup().await;
    // Saturday 23:50 KST (a weekend, Friday 14:50 in UTC), Monday 00:05 KST (a weekday, Sunday in UTC) and
    // Wednesday 2026-06-03 10:20 KST (the local-election holiday).
    for (at, available) in
        [("2026-06-13T23:50", 11), ("2026-06-15T00:05", 22), ("2026-06-03T10:20", 33)]
    {
        sqlx::query(
            "insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity)
             values ($1, $2, $2, $3, 200)",
        )
        .bind(LOT)
        .bind(db::db_time(kst(at)))
        .bind(available)
        .execute(&database.pool)
        .await
        .unwrap();
    }
    refresh::roll_up(&database.pool, &[LOT.to_owned()], kst("2026-06-16T00:00")).await.unwrap();
    let cells: Vec<(String, i16, i64, f64)> = sqlx::query_as(
        "select day_type, slot, n, mean from forecast.baseline where lot_id = $1 order by mean",
    )
    .bind(LOT)
    .fetch_all(&database.pool)
    .await
    .unwrap();
    assert_eq!(
        cells,
        [
            ("weekend".to_owned(), 95, 1, 11.0),
            ("weekday".to_owned(), 0, 1, 22.0),
            ("weekend".to_owned(), 41, 1, 33.0),
        ]
    );
    database.drop_now().await.unwrap();
}

#[tokio::test]
async fn a_park_outlook_blends_the_official_forecast_with_the_park_history() {
    let database = setup().await;
    let now = kst("2026-06-17T10:00");
    // Four weeks of weekday readings: yeouido is always crowded.
    let mut at = kst("2026-05-20T00:00");
    while at < now {
        sqlx::query(
            "insert into ingest.congestion_observation (park_id, observed_at, fetched_at, level)
             values ('yeouido', $1, $1, 'crowded')",
        )
        .bind(db::db_time(at))
        .execute(&database.pool)
        .await
        .unwrap();
        at = plus(at, 3_600);
    }
    // The city's latest forecast covers the next two hours only and says normal.
    for hours in 1..=2 {
        sqlx::query(
            "insert into ingest.congestion_forecast_official (park_id, issued_at, target_at, level, population_min, population_max)
             values ('yeouido', $1, $2, 'normal', 1000, 2000)",
        )
        .bind(db::db_time(now))
        .bind(db::db_time(plus(now, hours * 3_600)))
        .execute(&database.pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "insert into ingest.source_status (source, last_attempt_at, last_success_at, last_outcome)
         values ('seoul_citydata', $1, $1, 'ok')",
    )
    .bind(db::db_time(now))
    .execute(&database.pool)
    .await
    .unwrap();

    let refreshed =
        refresh::refresh(&database.pool, &[], &["yeouido".to_owned()], now).await.unwrap();
    assert_eq!(refreshed, Refreshed { lots: 0, parks: 1, scored: 0 }, "only the park named");
    let (hours, confidence, reasons): (serde_json::Value, Option<String>, Vec<String>) = sqlx::query_as(
        "select hours, confidence, reasons from forecast.park_forecast where park_id = 'yeouido'",
    )
    .fetch_one(&database.pool)
    .await
    .unwrap();
    let hours: Vec<db::forecasts::Hour> = serde_json::from_value(hours).unwrap();
    assert_eq!(hours.len(), 12, "history carries the outlook past the official hours");
    // 0.75 × normal (1) + 0.25 × crowded (3) = 1.5 → slightly crowded; past the city's hours, crowded.
    assert_eq!(hours[0].level, contracts::v2::CongestionLevel::SlightlyCrowded);
    assert_eq!(hours[5].level, contracts::v2::CongestionLevel::Crowded);
    assert_eq!(confidence.as_deref(), Some("medium"));
    assert_eq!(reasons, ["official_forecast"]);
    database.drop_now().await.unwrap();
}
