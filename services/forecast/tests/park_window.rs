//! The sliding park history window against a real PostgreSQL: after any sequence of refreshes its counts are
//! exactly those of the 56 days ending at the refresh, as a full aggregate of the history would give.

use contracts::Timestamp;
use forecast::park_window::{self, LevelCount};
use migrate::testing::TestDatabase;

const PARKS: [&str; 2] = ["yeouido", "banpo"];
const LEVELS: [&str; 4] = ["relaxed", "normal", "slightly_crowded", "crowded"];

fn kst(text: &str) -> Timestamp {
    contracts::seoul::instant(text.parse().unwrap()).unwrap()
}

/// Readings every 25 minutes from `from` for `hours`, the level by a fixed pattern.
async fn observe(database: &TestDatabase, from: Timestamp, hours: i64) {
    sqlx::query(
        "insert into ingest.congestion_observation (park_id, observed_at, fetched_at, level)
         select p, t, t, ($3::text[])[1 + (extract(epoch from t)::int8 / 1500 + length(p)) % 4]
         from unnest($1::text[]) as p
         cross join generate_series(to_timestamp($2), to_timestamp($2) + make_interval(hours => $4), interval '25 minutes') as t
         on conflict do nothing",
    )
    .bind(PARKS)
    .bind(from.as_unix_seconds() as f64)
    .bind(LEVELS)
    .bind(hours as i32)
    .execute(&database.pool)
    .await
    .unwrap();
}

/// The same counts aggregated from the whole history, the way an outlook read them before the window.
async fn aggregated(database: &TestDatabase, holidays: &[i64], now: Timestamp) -> Vec<LevelCount> {
    sqlx::query_as(
        "select park_id, forecast.seoul_day_type(observed_at, $2) as day_type,
                forecast.seoul_hour(observed_at) as hour, level, count(*) as n
         from ingest.congestion_observation
         where park_id = any($1) and observed_at > $3 - interval '56 days' and observed_at <= $3
         group by 1, 2, 3, 4 order by 1, 2, 3, 4",
    )
    .bind(PARKS)
    .bind(holidays)
    .bind(db::db_time(now))
    .fetch_all(&database.pool)
    .await
    .unwrap()
}

async fn window(database: &TestDatabase, holidays: &[i64], now: Timestamp) -> Vec<LevelCount> {
    let parks: Vec<String> = PARKS.iter().map(|p| (*p).to_owned()).collect();
    let mut counts = park_window::counts(&database.pool, &parks, holidays, now).await.unwrap();
    counts.sort_by(|a, b| {
        (&a.park_id, &a.day_type, a.hour, &a.level).cmp(&(
            &b.park_id,
            &b.day_type,
            b.hour,
            &b.level,
        ))
    });
    counts
}

#[tokio::test]
async fn the_window_slides_to_exactly_the_56_days_ending_at_each_refresh() {
    let database = TestDatabase::create().await.unwrap();
    db::reference::sync(&database.pool, &db::reference::Reference::curated().unwrap())
        .await
        .unwrap();
    let start = kst("2026-03-01T00:00");
    // 70 days of history, so the window's far end moves through readings too.
    observe(&database, start, 70 * 24).await;
    let holidays = [20_513_i64]; // 2026-03-01 (삼일절), as days since 1970-01-01
    let mut now = kst("2026-04-30T09:10");
    assert_eq!(
        window(&database, &holidays, now).await,
        aggregated(&database, &holidays, now).await
    );
    // Refreshes minutes, hours and a day apart.
    for step in [300, 7_200, 60, 86_400, 1_500, 40_000] {
        now = Timestamp::from_unix_seconds(now.as_unix_seconds() + step).unwrap();
        let expected = aggregated(&database, &holidays, now).await;
        assert_eq!(window(&database, &holidays, now).await, expected, "after {step} s");
    }
    // A new holiday calendar recounts the day types.
    let other = [20_513_i64, 20_560];
    assert_eq!(window(&database, &other, now).await, aggregated(&database, &other, now).await);
    // A refresh earlier than the stored window's end (a pinned clock) recounts too.
    let earlier = kst("2026-04-20T12:00");
    assert_eq!(
        window(&database, &other, earlier).await,
        aggregated(&database, &other, earlier).await
    );
    database.drop_now().await.unwrap();
}
