//! A refresh: fold new observations into the baselines, score issued horizons whose time has come, recompute
//! and store the forecasts of the named lots and parks, and notify the api. Safe to repeat: the baseline only
//! takes observations past its watermark, scoring only unscored rows, and forecasts are upserted.

use std::collections::HashMap;

use contracts::{
    Timestamp,
    enums::WireEnum,
    freshness::SourceId,
    v2::{Confidence, CongestionLevel},
};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::{
    accuracy,
    calendar::{self, DayType},
    model::{self, Evidence, Stats},
    park::{self, ParkEvidence},
    park_window,
};

/// How far ahead the park outlook reaches.
const PARK_HOURS: i64 = 12;
/// How long issued horizons are kept for backtests; older ones are deleted as each lot is refreshed.
pub const ISSUED_RETENTION_DAYS: i32 = 90;

/// What a refresh did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    pub lots: u32,
    pub parks: u32,
    pub scored: u64,
}

/// The curated holidays as days since 1970-01-01, the day numbers the queries compute.
fn holiday_day_numbers() -> Vec<i64> {
    calendar::holidays()
        .iter()
        .map(|date| {
            date.to_zoned(jiff::tz::TimeZone::UTC).expect("in range").timestamp().as_second()
                / 86_400
        })
        .collect()
}

fn db(instant: Timestamp) -> OffsetDateTime {
    db::db_time(instant)
}

/// Folds observations newer than each lot's watermark (up to `now`) into its baseline.
pub async fn roll_up(pool: &PgPool, lot_ids: &[String], now: Timestamp) -> sqlx::Result<()> {
    let holidays = holiday_day_numbers();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "with todo as (
             select l.lot_id, coalesce(r.rolled_up_to, '-infinity'::timestamptz) as since
             from reference.lot l left join forecast.rollup_state r using (lot_id)
             where cardinality($1::text[]) = 0 or l.lot_id = any($1)
         ),
         fresh as (
             -- Per lot through the primary key, from its watermark: only new rows are read. Seoul has kept
             -- UTC+9 without daylight saving since 1988, so local time is plain arithmetic on epoch seconds.
             select t.lot_id, floor(date_part('epoch', o.observed_at))::int8 + 32400 as local_s, o.available
             from todo t cross join lateral (
                 select observed_at, available from ingest.lot_observation
                 where lot_id = t.lot_id and observed_at > t.since and observed_at <= $2 and available is not null
                 -- A fence: pulled up into a join, the planner would hash-join the whole table instead.
                 offset 0
             ) o
         ),
         per_day as (
             select lot_id, local_s / 86400 as day, ((local_s % 86400) / 900)::smallint as slot,
                    count(*) as n, sum(available)::float8 as s, sum(available::float8 * available) as ss
             from fresh group by 1, 2, 3
         ),
         grouped as (
             -- Day 0 (1970-01-01) was a Thursday: (day + 3) % 7 is 5 on Saturdays and 6 on Sundays.
             select lot_id,
                    case when (day + 3) % 7 >= 5 or day = any($3::int8[]) then 'weekend' else 'weekday' end as day_type,
                    slot, sum(n) as n, sum(s) as s, sum(ss) as ss
             from per_day group by 1, 2, 3
         )
         insert into forecast.baseline (lot_id, day_type, slot, n, mean, m2)
         select lot_id, day_type, slot, n, s / n, greatest(ss - s * s / n, 0) from grouped
         on conflict (lot_id, day_type, slot) do update set
             n = forecast.baseline.n + excluded.n,
             mean = (forecast.baseline.n * forecast.baseline.mean + excluded.n * excluded.mean)
                    / (forecast.baseline.n + excluded.n),
             m2 = forecast.baseline.m2 + excluded.m2
                  + forecast.baseline.n::float8 * excluded.n / (forecast.baseline.n + excluded.n)
                    * (forecast.baseline.mean - excluded.mean) ^ 2",
    )
    .bind(lot_ids)
    .bind(db(now))
    .bind(&holidays)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into forecast.rollup_state (lot_id, rolled_up_to)
         select l.lot_id, coalesce(latest.observed_at, '-infinity'::timestamptz)
         from reference.lot l
         -- Per lot, newest first through the primary key: a scan of the whole history would grow forever.
         left join lateral (select o.observed_at from ingest.lot_observation o
                            where o.lot_id = l.lot_id and o.observed_at <= $2
                            order by o.observed_at desc limit 1) latest on true
         where cardinality($1::text[]) = 0 or l.lot_id = any($1)
         on conflict (lot_id) do update set rolled_up_to = greatest(forecast.rollup_state.rolled_up_to, excluded.rolled_up_to)",
    )
    .bind(lot_ids)
    .bind(db(now))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Scores issued horizons whose target time has passed, against the observation nearest the target (within
/// five minutes). A horizon with no observation in its window (the source was down) is closed without an
/// actual and stays out of the accuracy. Returns how many got an actual.
pub async fn score(pool: &PgPool, now: Timestamp) -> sqlx::Result<u64> {
    let (scored,): (i64,) = sqlx::query_as(
        "with due as (
             select i.lot_id, i.issued_at, i.horizon_minutes,
                    (select o.available from ingest.lot_observation o
                     where o.lot_id = i.lot_id and o.available is not null
                       and o.observed_at between i.target_at - interval '5 minutes' and i.target_at + interval '5 minutes'
                     order by abs(extract(epoch from o.observed_at - i.target_at)) limit 1) as actual
             from forecast.issued i
             where i.scored_at is null and i.target_at <= $1 - interval '5 minutes'
         ),
         closed as (
             update forecast.issued i set actual = due.actual, scored_at = $1
             from due
             where (i.lot_id, i.issued_at, i.horizon_minutes) = (due.lot_id, due.issued_at, due.horizon_minutes)
             returning i.actual
         )
         select count(actual) from closed",
    )
    .bind(db(now))
    .fetch_one(pool)
    .await?;
    Ok(scored as u64)
}

async fn lot_ids(
    pool: &PgPool,
    requested: &[String],
) -> sqlx::Result<Vec<(String, String, Option<i32>)>> {
    sqlx::query_as(
        "select lot_id, park_id, capacity from reference.lot where cardinality($1::text[]) = 0 or lot_id = any($1)",
    )
    .bind(requested)
    .fetch_all(pool)
    .await
}

/// Recomputes and stores, as of `now`, the forecasts of exactly the `lots` and `parks` named (what an ingest
/// cycle changed), or of everything when both are empty (a full refresh).
pub async fn refresh(
    pool: &PgPool,
    lots: &[String],
    parks: &[String],
    now: Timestamp,
) -> sqlx::Result<Refreshed> {
    let everything = lots.is_empty() && parks.is_empty();
    // In the queries below an empty list means every row; it is only passed that way for a full refresh.
    let lots_to_do =
        if everything || !lots.is_empty() { lot_ids(pool, lots).await? } else { Vec::new() };
    if !lots_to_do.is_empty() {
        roll_up(pool, lots, now).await?;
    }
    let scored = score(pool, now).await?;
    let mut refreshed = Refreshed { scored, ..Refreshed::default() };
    let source_stale = source_stale(pool, SourceId::ParkingPortal, now).await?;
    let events: Vec<(String,)> = sqlx::query_as(
        "select distinct park_id from ingest.event
         where cancelled_at is null and ($1 at time zone 'Asia/Seoul')::date between starts_on and ends_on",
    )
    .bind(db(now))
    .fetch_all(pool)
    .await?;
    let parks_with_events: Vec<String> = events.into_iter().map(|(park,)| park).collect();

    let lot_names: Vec<String> = lots_to_do.iter().map(|(lot_id, _, _)| lot_id.clone()).collect();
    let accuracies = accuracy::by_lot(pool, &lot_names, now).await?;
    // One transaction for every lot: the api sees a refresh whole, and it costs one commit, not one per lot.
    let mut tx = pool.begin().await?;
    for (lot_id, park_id, curated_capacity) in lots_to_do {
        let recent: Vec<(OffsetDateTime, i32, Option<i32>)> = sqlx::query_as(
            "select observed_at, available, capacity from ingest.lot_observation
             where lot_id = $1 and available is not null and observed_at <= $2
               and observed_at > (select max(observed_at) from ingest.lot_observation where lot_id = $1 and observed_at <= $2) - interval '30 minutes'
             order by observed_at",
        )
        .bind(&lot_id)
        .bind(db(now))
        .fetch_all(pool)
        .await?;
        let baseline_rows: Vec<(String, i16, i64, f64, f64)> = sqlx::query_as(
            "select day_type, slot, n, mean, m2 from forecast.baseline where lot_id = $1",
        )
        .bind(&lot_id)
        .fetch_all(pool)
        .await?;
        let baseline: HashMap<(DayType, i16), Stats> = baseline_rows
            .into_iter()
            .map(|(day_type, slot, n, mean, m2)| {
                let day_type = DayType::from_stored(&day_type);
                let variance = if n > 1 { m2 / (n - 1) as f64 } else { 0.0 };
                ((day_type, slot), Stats { n, mean, variance })
            })
            .collect();
        let capacity = recent
            .last()
            .and_then(|(_, _, capacity)| *capacity)
            .or(curated_capacity)
            .and_then(|c| u32::try_from(c).ok());
        let evidence = Evidence {
            capacity,
            recent: recent
                .iter()
                .filter_map(|(at, available, _)| {
                    Some((db::wire_time(*at), u32::try_from(*available).ok()?))
                })
                .collect(),
            baseline,
            source_stale,
            event_nearby: parks_with_events.contains(&park_id),
        };
        let forecast = model::forecast(&evidence, now);
        let accuracy = accuracies.get(&lot_id);
        // A primary-key range of what expired since the last refresh: keeps the table at three months.
        sqlx::query(
            "delete from forecast.issued where lot_id = $1 and issued_at < $2 - make_interval(days => $3)",
        )
        .bind(&lot_id)
        .bind(db(now))
        .bind(ISSUED_RETENTION_DAYS)
        .execute(pool)
        .await?;
        let based_on = evidence.recent.last().map(|(at, _)| db(*at));
        sqlx::query(
            "insert into forecast.lot_forecast (lot_id, issued_at, based_on_observed_at, capacity, horizons, confidence, reasons, accuracy)
             values ($1, $2, $3, $4, $5, $6, $7, $8)
             on conflict (lot_id) do update set issued_at = excluded.issued_at,
                based_on_observed_at = excluded.based_on_observed_at, capacity = excluded.capacity,
                horizons = excluded.horizons, confidence = excluded.confidence, reasons = excluded.reasons,
                accuracy = excluded.accuracy",
        )
        .bind(&lot_id)
        .bind(db(now))
        .bind(based_on)
        .bind(capacity.map(|c| c as i32))
        .bind(serde_json::to_value(&forecast.horizons).expect("horizons serialize"))
        .bind(forecast.confidence.map(Confidence::as_str))
        .bind(forecast.reasons.iter().map(|reason| reason.as_str()).collect::<Vec<_>>())
        .bind(accuracy)
        .execute(&mut *tx)
        .await?;
        for horizon in &forecast.horizons {
            sqlx::query(
                "insert into forecast.issued (lot_id, issued_at, horizon_minutes, target_at, p10, p50, p90, risk_full)
                 values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing",
            )
            .bind(&lot_id)
            .bind(db(now))
            .bind(horizon.horizon_minutes as i16)
            .bind(db(horizon.target_at))
            .bind(horizon.p10 as i32)
            .bind(horizon.p50 as i32)
            .bind(horizon.p90 as i32)
            .bind(horizon.risk_full)
            .execute(&mut *tx)
            .await?;
        }
        refreshed.lots += 1;
    }
    tx.commit().await?;

    if everything || !parks.is_empty() {
        refreshed.parks = refresh_parks(pool, parks, now, &parks_with_events).await?;
    }
    db::notify_data_changed(pool, "forecast").await?;
    Ok(refreshed)
}

/// Whether `source` counts as stale for forecasting: failing now, never collected, or last collected longer
/// ago than it stays fresh.
async fn source_stale(pool: &PgPool, source: SourceId, now: Timestamp) -> sqlx::Result<bool> {
    let max_age_seconds = source.thresholds().map_or(i64::MAX, |limits| limits.fresh_seconds);
    let status: Option<(Option<OffsetDateTime>, i32)> = sqlx::query_as(
        "select last_success_at, consecutive_failures from ingest.source_status where source = $1",
    )
    .bind(source.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(status.is_none_or(|(success, failures)| {
        failures > 0
            || success.is_none_or(|at| db::wire_time(at).seconds_until(now) > max_age_seconds)
    }))
}

/// One hour of Seoul's latest official congestion forecast for a park.
#[derive(sqlx::FromRow)]
struct OfficialRow {
    park_id: String,
    target_at: OffsetDateTime,
    level: String,
    population_min: Option<i32>,
    population_max: Option<i32>,
}

/// Park outlooks: Seoul's official hourly forecast blended with each park's own history (see `park`).
async fn refresh_parks(
    pool: &PgPool,
    parks: &[String],
    now: Timestamp,
    parks_with_events: &[String],
) -> sqlx::Result<u32> {
    let park_ids: Vec<(String,)> = sqlx::query_as(
        "select park_id from reference.park where cardinality($1::text[]) = 0 or park_id = any($1)",
    )
    .bind(parks)
    .fetch_all(pool)
    .await?;
    let official: Vec<OfficialRow> = sqlx::query_as(
        // Per park, its latest issue newest first through the primary key (park_id, issued_at, target_at):
        // a year of issues costs what a day does.
        "select f.park_id, f.target_at, f.level, f.population_min, f.population_max
         from reference.park p
         cross join lateral (select issued_at from ingest.congestion_forecast_official
                             where park_id = p.park_id and issued_at <= $2
                             order by issued_at desc limit 1) latest
         join ingest.congestion_forecast_official f
           on f.park_id = p.park_id and f.issued_at = latest.issued_at
         where (cardinality($1::text[]) = 0 or p.park_id = any($1))
           and f.target_at > $2 and f.target_at <= $2 + make_interval(hours => $3::int)",
    )
    .bind(parks)
    .bind(db(now))
    .bind(PARK_HOURS as i32)
    .fetch_all(pool)
    .await?;
    let named: Vec<String> = park_ids.iter().map(|(park_id,)| park_id.clone()).collect();
    let history = park_window::counts(pool, &named, &holiday_day_numbers(), now).await?;
    let citydata_stale = source_stale(pool, SourceId::SeoulCitydata, now).await?;

    let mut evidence: HashMap<String, ParkEvidence> = park_ids
        .into_iter()
        .map(|(park_id,)| {
            let event_nearby = parks_with_events.contains(&park_id);
            (
                park_id,
                ParkEvidence {
                    source_stale: citydata_stale,
                    event_nearby,
                    ..ParkEvidence::default()
                },
            )
        })
        .collect();
    for row in official {
        let (Some(park), Some(level)) =
            (evidence.get_mut(&row.park_id), CongestionLevel::from_wire(&row.level))
        else {
            continue;
        };
        park.official.push(park::OfficialHour {
            target_at: db::wire_time(row.target_at),
            level,
            population_min: row.population_min.and_then(|v| u32::try_from(v).ok()),
            population_max: row.population_max.and_then(|v| u32::try_from(v).ok()),
        });
    }
    for row in history {
        let Some(park) = evidence.get_mut(&row.park_id) else { continue };
        let Some(index) = CongestionLevel::from_wire(&row.level).and_then(park::level_index) else {
            continue;
        };
        let day_type = DayType::from_stored(&row.day_type);
        park.history.entry((day_type, row.hour as u8)).or_default()[index] += row.n as u32;
    }

    let mut tx = pool.begin().await?;
    for (park_id, evidence) in &evidence {
        let outlook = park::outlook(evidence, now, PARK_HOURS as u32);
        sqlx::query(
            "insert into forecast.park_forecast (park_id, issued_at, hours, confidence, reasons)
             values ($1, $2, $3, $4, $5)
             on conflict (park_id) do update set issued_at = excluded.issued_at, hours = excluded.hours,
                confidence = excluded.confidence, reasons = excluded.reasons",
        )
        .bind(park_id)
        .bind(db(now))
        .bind(serde_json::to_value(&outlook.hours).expect("hours serialize"))
        .bind(outlook.confidence.map(Confidence::as_str))
        .bind(outlook.reasons.iter().map(|reason| reason.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(evidence.len() as u32)
}
