//! A park's own congestion history over the last [`WINDOW_DAYS`]: how often it was at each level per day type
//! and Seoul hour. Counted once and then slid, not re-aggregated from the whole window on every refresh:
//! `forecast.park_level_window` holds the counts up to `park_window_state.through`, and each refresh adds the
//! readings that entered the window and subtracts those that left it, reading only those through the primary
//! key (park_id, observed_at). So an outlook costs the same after a year of readings as after a day.
//!
//! The stored window ends [`SETTLE`] before the refresh (city data reports its observation time minutes after
//! the fact, so a reading may be stored after a later one); the last stretch up to now, and the matching
//! stretch at the window's far end, are read live, so the counts are exactly those of the window ending now.
//! A park is recounted from scratch when it has no window yet, when the holiday calendar changed, when the
//! refresh's `now` is before the stored end (a test's pinned clock), or when more than a window has passed.

use contracts::Timestamp;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::sliding::Plan;

/// How far back a park's own congestion history reaches.
pub const WINDOW_DAYS: i64 = 56;
/// How late a reading may be stored after the moment it was observed and still be counted.
const SETTLE: time::Duration = time::Duration::hours(1);

/// How often a park was at `level` on `day_type` days at `hour` (Seoul) over the window.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LevelCount {
    pub park_id: String,
    pub day_type: String,
    pub hour: i16,
    pub level: String,
    pub n: i64,
}

/// The window of each of `parks` ending at `now`, sliding the stored counts forward first.
pub async fn counts(
    pool: &PgPool,
    parks: &[String],
    holidays: &[i64],
    now: Timestamp,
) -> sqlx::Result<Vec<LevelCount>> {
    let now = db::db_time(now);
    let stored_end = now - SETTLE;
    let calendar = holidays.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut tx = pool.begin().await?;
    // One refresh at a time moves a park's window: the state rows are locked until this one commits.
    sqlx::query(
        "insert into forecast.park_window_state (park_id, through, holidays)
         select park_id, null, '' from reference.park where park_id = any($1)
         on conflict do nothing",
    )
    .bind(parks)
    .execute(&mut *tx)
    .await?;
    let states: Vec<(String, Option<OffsetDateTime>, String)> = sqlx::query_as(
        "select park_id, through, holidays from forecast.park_window_state
         where park_id = any($1) order by park_id for update",
    )
    .bind(parks)
    .fetch_all(&mut *tx)
    .await?;
    let states = states
        .into_iter()
        .map(|(park, through, counted_with)| (park, through, counted_with == calendar));
    let plan = Plan::new(states, stored_end, time::Duration::days(WINDOW_DAYS));
    recount_windows(&mut tx, &plan.recount, holidays, stored_end).await?;
    slide_windows(&mut tx, &plan.slide, holidays, stored_end).await?;
    sqlx::query(
        "update forecast.park_window_state set through = $2, holidays = $3 where park_id = any($1)",
    )
    .bind(plan.moved())
    .bind(stored_end)
    .bind(&calendar)
    .execute(&mut *tx)
    .await?;
    // The stored window (now - SETTLE - 56 d, now - SETTLE], moved to (now - 56 d, now].
    let counts = sqlx::query_as(
        "with moved as (
             select park_id, day_type, hour, level, n::int8 as n from forecast.park_level_window
             where park_id = any($1)
             union all
             select p.park_id, forecast.seoul_day_type(o.observed_at, $4), forecast.seoul_hour(o.observed_at),
                    o.level, o.sign
             from unnest($1::text[]) as p(park_id)
             cross join lateral (
                 select observed_at, level, 1 as sign from ingest.congestion_observation
                 where park_id = p.park_id and observed_at > $2 and observed_at <= $3
                 union all
                 select observed_at, level, -1 from ingest.congestion_observation
                 where park_id = p.park_id and observed_at > $2 - make_interval(days => $5::int)
                   and observed_at <= $3 - make_interval(days => $5::int)
             ) o
         )
         select park_id, day_type, hour, level, sum(n)::int8 as n from moved
         group by park_id, day_type, hour, level having sum(n) > 0",
    )
    .bind(parks)
    .bind(stored_end)
    .bind(now)
    .bind(holidays)
    .bind(WINDOW_DAYS as i32)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(counts)
}

/// Counts the window ending at `end` of each of `parks` from their readings.
async fn recount_windows(
    tx: &mut Transaction<'_, Postgres>,
    parks: &[String],
    holidays: &[i64],
    end: OffsetDateTime,
) -> sqlx::Result<()> {
    if parks.is_empty() {
        return Ok(());
    }
    sqlx::query("delete from forecast.park_level_window where park_id = any($1)")
        .bind(parks)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "insert into forecast.park_level_window (park_id, day_type, hour, level, n)
         select park_id, forecast.seoul_day_type(observed_at, $3), forecast.seoul_hour(observed_at), level, count(*)
         from ingest.congestion_observation
         where park_id = any($1) and observed_at > $2 - make_interval(days => $4::int) and observed_at <= $2
         group by 1, 2, 3, 4",
    )
    .bind(parks)
    .bind(end)
    .bind(holidays)
    .bind(WINDOW_DAYS as i32)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves each park's window from its stored end to `end`: adds the readings in (through, end], subtracts
/// those in (through - 56 d, end - 56 d].
async fn slide_windows(
    tx: &mut Transaction<'_, Postgres>,
    slide: &[(String, OffsetDateTime)],
    holidays: &[i64],
    end: OffsetDateTime,
) -> sqlx::Result<()> {
    if slide.is_empty() {
        return Ok(());
    }
    let (parks, throughs): (Vec<&str>, Vec<OffsetDateTime>) =
        slide.iter().map(|(park, through)| (park.as_str(), *through)).unzip();
    sqlx::query(
        "insert into forecast.park_level_window (park_id, day_type, hour, level, n)
         select s.park_id, forecast.seoul_day_type(o.observed_at, $4), forecast.seoul_hour(o.observed_at),
                o.level, sum(o.sign)
         from unnest($1::text[], $2::timestamptz[]) as s(park_id, through)
         cross join lateral (
             select observed_at, level, 1 as sign from ingest.congestion_observation
             where park_id = s.park_id and observed_at > s.through and observed_at <= $3
             union all
             select observed_at, level, -1 from ingest.congestion_observation
             where park_id = s.park_id and observed_at > s.through - make_interval(days => $5::int)
               and observed_at <= $3 - make_interval(days => $5::int)
         ) o
         group by 1, 2, 3, 4
         on conflict (park_id, day_type, hour, level)
         do update set n = forecast.park_level_window.n + excluded.n",
    )
    .bind(&parks)
    .bind(&throughs)
    .bind(end)
    .bind(holidays)
    .bind(WINDOW_DAYS as i32)
    .execute(&mut **tx)
    .await?;
    // A reading stored later than SETTLE after it was observed was never added, and is subtracted as it
    // leaves: the count may not go below what is left of it.
    sqlx::query("delete from forecast.park_level_window where park_id = any($1) and n <= 0")
        .bind(&parks)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
