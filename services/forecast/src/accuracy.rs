//! The accuracy shown with each lot's forecast: over the horizons scored in the last [`ACCURACY_DAYS`] (by
//! target time), the mean absolute error per horizon and how often the actual fell within p10..p90. Kept as
//! sliding sums like the park history (`crate::park_window`): `forecast.accuracy_window` holds per lot and
//! horizon the count, the summed absolute error and the covered count up to `accuracy_state.through`, moved
//! forward each refresh by the horizons that entered and left the window, so a refresh reads what changed,
//! not two weeks of horizons per lot.
//!
//! The stored end is [`SETTLE`] before the refresh: a horizon is scored five minutes after its target, by the
//! refresh's own scoring step just before, so every horizon up to the stored end is final. The stretch after
//! it (and the matching one at the far end) is read live.

use std::collections::HashMap;

use contracts::Timestamp;
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::sliding::Plan;

/// The window the accuracy shown with a forecast covers.
pub const ACCURACY_DAYS: i64 = 14;
/// How long after its target a horizon may still be unscored (scoring waits five minutes).
const SETTLE: time::Duration = time::Duration::minutes(10);

/// One lot and horizon's sums over the window.
#[derive(Debug, sqlx::FromRow)]
struct Sums {
    lot_id: String,
    horizon_minutes: i16,
    n: i64,
    abs_error: i64,
    covered: i64,
}

/// The accuracy of each of `lots` over the window ending at `now` (`None` for a lot with no scored horizon),
/// sliding the stored sums forward first.
pub async fn by_lot(
    pool: &PgPool,
    lots: &[String],
    now: Timestamp,
) -> sqlx::Result<HashMap<String, Value>> {
    let now = db::db_time(now);
    let stored_end = now - SETTLE;
    let window = time::Duration::days(ACCURACY_DAYS);
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into forecast.accuracy_state (lot_id, through)
         select lot_id, null from reference.lot where lot_id = any($1) on conflict do nothing",
    )
    .bind(lots)
    .execute(&mut *tx)
    .await?;
    // One refresh at a time moves a lot's sums: the state rows are locked until this one commits.
    let states: Vec<(String, Option<OffsetDateTime>)> = sqlx::query_as(
        "select lot_id, through from forecast.accuracy_state where lot_id = any($1) order by lot_id for update",
    )
    .bind(lots)
    .fetch_all(&mut *tx)
    .await?;
    let plan = Plan::new(
        states.into_iter().map(|(lot, through)| (lot, through, true)),
        stored_end,
        window,
    );
    recount(&mut tx, &plan.recount, stored_end).await?;
    slide(&mut tx, &plan.slide, stored_end).await?;
    sqlx::query("update forecast.accuracy_state set through = $2 where lot_id = any($1)")
        .bind(plan.moved())
        .bind(stored_end)
        .execute(&mut *tx)
        .await?;
    // The stored sums over (now - SETTLE - 14 d, now - SETTLE], moved to (now - 14 d, now].
    let sums: Vec<Sums> = sqlx::query_as(
        "with parts as (
             select lot_id, horizon_minutes, n::int8 as n, abs_error, covered::int8 as covered
             from forecast.accuracy_window where lot_id = any($1)
             union all
             select s.lot_id, s.horizon_minutes, 1, s.abs_error, s.covered
             from unnest($1::text[]) as l(lot_id)
             cross join lateral (select i.lot_id, i.horizon_minutes, abs(i.actual - i.p50) as abs_error,
                                        (i.actual between i.p10 and i.p90)::int as covered
                                 from forecast.issued i
                                 where i.lot_id = l.lot_id and i.actual is not null
                                   and i.issued_at > $2 - interval '2 hours' and i.issued_at <= $3
                                   and i.target_at > $2 and i.target_at <= $3) s
             union all
             select s.lot_id, s.horizon_minutes, -1, -s.abs_error, -s.covered
             from unnest($1::text[]) as l(lot_id)
             cross join lateral (select i.lot_id, i.horizon_minutes, abs(i.actual - i.p50) as abs_error,
                                        (i.actual between i.p10 and i.p90)::int as covered
                                 from forecast.issued i
                                 where i.lot_id = l.lot_id and i.actual is not null
                                   and i.issued_at > $2 - $4 - interval '2 hours' and i.issued_at <= $3 - $4
                                   and i.target_at > $2 - $4 and i.target_at <= $3 - $4) s
         )
         select lot_id, horizon_minutes, sum(n)::int8 as n, sum(abs_error)::int8 as abs_error,
                sum(covered)::int8 as covered
         from parts group by lot_id, horizon_minutes having sum(n) > 0
         order by lot_id, horizon_minutes",
    )
    .bind(lots)
    .bind(stored_end)
    .bind(now)
    .bind(window)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(summaries(sums))
}

/// Each lot's accuracy as stored with its forecast: `window_days`, `scored_forecasts`, the mean absolute
/// error per horizon (one decimal) and the interval coverage (three decimals).
fn summaries(sums: Vec<Sums>) -> HashMap<String, Value> {
    let mut by_lot: HashMap<String, Vec<Sums>> = HashMap::new();
    for row in sums {
        by_lot.entry(row.lot_id.clone()).or_default().push(row);
    }
    by_lot
        .into_iter()
        .map(|(lot_id, horizons)| {
            let scored: i64 = horizons.iter().map(|h| h.n).sum();
            let covered: i64 = horizons.iter().map(|h| h.covered).sum();
            let errors: Vec<Value> = horizons
                .iter()
                .map(|h| {
                    json!({
                        "horizon_minutes": h.horizon_minutes,
                        "spaces": round(h.abs_error as f64 / h.n as f64, 1),
                    })
                })
                .collect();
            let summary = json!({
                "window_days": ACCURACY_DAYS,
                "scored_forecasts": scored,
                "mean_absolute_error": errors,
                "interval_coverage": round(covered as f64 / scored as f64, 3),
            });
            (lot_id, summary)
        })
        .collect()
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (value * scale).round() / scale
}

/// Sums each of `lots`' scored horizons with targets in the window ending at `end`.
async fn recount(
    tx: &mut Transaction<'_, Postgres>,
    lots: &[String],
    end: OffsetDateTime,
) -> sqlx::Result<()> {
    if lots.is_empty() {
        return Ok(());
    }
    sqlx::query("delete from forecast.accuracy_window where lot_id = any($1)")
        .bind(lots)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "insert into forecast.accuracy_window (lot_id, horizon_minutes, n, abs_error, covered)
         select i.lot_id, i.horizon_minutes, count(*), sum(abs(i.actual - i.p50)),
                count(*) filter (where i.actual between i.p10 and i.p90)
         from forecast.issued i
         where i.lot_id = any($1) and i.actual is not null
           and i.issued_at > $2 - $3 - interval '2 hours' and i.issued_at <= $2
           and i.target_at > $2 - $3 and i.target_at <= $2
         group by 1, 2",
    )
    .bind(lots)
    .bind(end)
    .bind(time::Duration::days(ACCURACY_DAYS))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves each lot's sums from its stored end to `end`.
async fn slide(
    tx: &mut Transaction<'_, Postgres>,
    slide: &[(String, OffsetDateTime)],
    end: OffsetDateTime,
) -> sqlx::Result<()> {
    if slide.is_empty() {
        return Ok(());
    }
    let (lots, throughs): (Vec<&str>, Vec<OffsetDateTime>) =
        slide.iter().map(|(lot, through)| (lot.as_str(), *through)).unzip();
    sqlx::query(
        "insert into forecast.accuracy_window (lot_id, horizon_minutes, n, abs_error, covered)
         select s.lot_id, d.horizon_minutes, sum(d.sign), sum(d.sign * d.abs_error), sum(d.sign * d.covered)
         from unnest($1::text[], $2::timestamptz[]) as s(lot_id, through)
         cross join lateral (
             select i.horizon_minutes, 1 as sign, abs(i.actual - i.p50) as abs_error,
                    (i.actual between i.p10 and i.p90)::int as covered
             from forecast.issued i
             where i.lot_id = s.lot_id and i.actual is not null
               and i.issued_at > s.through - interval '2 hours' and i.issued_at <= $3
               and i.target_at > s.through and i.target_at <= $3
             union all
             select i.horizon_minutes, -1, abs(i.actual - i.p50), (i.actual between i.p10 and i.p90)::int
             from forecast.issued i
             where i.lot_id = s.lot_id and i.actual is not null
               and i.issued_at > s.through - $4 - interval '2 hours' and i.issued_at <= $3 - $4
               and i.target_at > s.through - $4 and i.target_at <= $3 - $4
         ) d
         group by 1, 2
         on conflict (lot_id, horizon_minutes) do update set
             n = forecast.accuracy_window.n + excluded.n,
             abs_error = forecast.accuracy_window.abs_error + excluded.abs_error,
             covered = forecast.accuracy_window.covered + excluded.covered",
    )
    .bind(&lots)
    .bind(&throughs)
    .bind(end)
    .bind(time::Duration::days(ACCURACY_DAYS))
    .execute(&mut **tx)
    .await?;
    sqlx::query("delete from forecast.accuracy_window where lot_id = any($1) and n <= 0")
        .bind(&lots)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
