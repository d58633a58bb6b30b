//! The sliding accuracy sums against a real PostgreSQL: after any sequence of refreshes they give exactly the
//! accuracy a full read of the two weeks of scored horizons gives.

use contracts::Timestamp;
use forecast::accuracy;
use migrate::testing::TestDatabase;
use serde_json::Value;

const LOTS: [&str; 2] = ["yeouido-2", "gwangnaru-1-2"];

fn kst(text: &str) -> Timestamp {
    contracts::seoul::instant(text.parse().unwrap()).unwrap()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(seconds).unwrap()
}

/// Horizons issued every 10 minutes over 20 days, scored five minutes after their target up to `scored_until`.
async fn issue(database: &TestDatabase, from: Timestamp, scored_until: Timestamp) {
    sqlx::query(
        "insert into forecast.issued (lot_id, issued_at, horizon_minutes, target_at, p10, p50, p90, risk_full, actual, scored_at)
         select l, t, h, t + make_interval(mins => h), 20, 50, 80, 0.1,
                case when t + make_interval(mins => h) <= to_timestamp($3) - interval '5 minutes'
                     then (extract(epoch from t)::int8 / 600 * 37 + h) % 100 end,
                case when t + make_interval(mins => h) <= to_timestamp($3) - interval '5 minutes'
                     then t + make_interval(mins => h + 5) end
         from unnest($1::text[]) as l
         cross join generate_series(to_timestamp($2), to_timestamp($2) + interval '20 days', interval '10 minutes') as t
         cross join unnest(array[15, 30, 60, 120]) as h
         on conflict (lot_id, issued_at, horizon_minutes) do update
             set actual = excluded.actual, scored_at = excluded.scored_at",
    )
    .bind(LOTS)
    .bind(from.as_unix_seconds() as f64)
    .bind(scored_until.as_unix_seconds() as f64)
    .execute(&database.pool)
    .await
    .unwrap();
}

/// The accuracy as a full read of the window computes it.
async fn full_read(database: &TestDatabase, lot: &str, now: Timestamp) -> Option<Value> {
    let (value,): (Option<Value>,) = sqlx::query_as(
        "select case when count(*) = 0 then null else jsonb_build_object(
             'window_days', 14, 'scored_forecasts', count(*),
             'mean_absolute_error', (select jsonb_agg(jsonb_build_object('horizon_minutes', h, 'spaces', round(e::numeric, 1)) order by h)
                                     from (select horizon_minutes h, avg(abs(actual - p50)) e from forecast.issued
                                           where lot_id = $1 and actual is not null and target_at > $2 - interval '14 days' and target_at <= $2
                                           group by horizon_minutes) per_horizon),
             'interval_coverage', round(avg(case when actual between p10 and p90 then 1.0 else 0.0 end), 3)) end
         from forecast.issued where lot_id = $1 and actual is not null and target_at > $2 - interval '14 days' and target_at <= $2",
    )
    .bind(lot)
    .bind(db::db_time(now))
    .fetch_one(&database.pool)
    .await
    .unwrap();
    value
}

async fn check(database: &TestDatabase, now: Timestamp) {
    let lots: Vec<String> = LOTS.iter().map(|lot| (*lot).to_owned()).collect();
    let slid = accuracy::by_lot(&database.pool, &lots, now).await.unwrap();
    for lot in LOTS {
        // Compared as jsonb would store them (numbers by value).
        let expected = full_read(database, lot, now).await;
        let got = slid.get(lot).cloned();
        let as_f64 = |value: Option<Value>| {
            value.map(|v| serde_json::from_value::<db::forecasts::Accuracy>(v).unwrap())
        };
        assert_eq!(as_f64(got), as_f64(expected), "{lot} at {now:?}");
    }
}

#[tokio::test]
async fn the_sums_slide_to_exactly_the_two_weeks_ending_at_each_refresh() {
    let database = TestDatabase::create().await.unwrap();
    db::reference::sync(&database.pool, &db::reference::Reference::curated().unwrap())
        .await
        .unwrap();
    let start = kst("2026-05-01T00:00");
    let mut now = kst("2026-05-17T08:03");
    issue(&database, start, now).await;
    check(&database, now).await;
    for step in [600, 60, 7_200, 86_400, 300] {
        now = at(now.as_unix_seconds() + step);
        // The refresh's scoring step has scored what came due meanwhile.
        issue(&database, start, now).await;
        check(&database, now).await;
    }
    // A refresh earlier than the stored end (a pinned clock) recounts.
    let earlier = kst("2026-05-10T12:00");
    check(&database, earlier).await;
    database.drop_now().await.unwrap();
}
