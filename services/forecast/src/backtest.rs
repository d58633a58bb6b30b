//! Rolling backtest reports over the scored horizons in `forecast.issued`: served by `GetBacktestReport` and
//! exported on `/metrics`.

use sqlx::PgPool;

/// Scores at one horizon over the window.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct HorizonRow {
    pub horizon_minutes: i16,
    pub scored: i64,
    pub mean_absolute_error: f64,
    /// Share of actuals inside p10–p90.
    pub coverage: f64,
}

/// How often lots really were full, per risk band (`low` < 0.2 ≤ `medium` < 0.5 ≤ `high`).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct BandRow {
    pub band: String,
    pub scored: i64,
    pub mean_predicted_risk: f64,
    pub observed_full_rate: f64,
}

/// Per-horizon scores of the last `window_days`, for one lot or all.
pub async fn horizons(
    pool: &PgPool,
    window_days: u32,
    lot_id: Option<&str>,
) -> sqlx::Result<Vec<HorizonRow>> {
    sqlx::query_as(
        "select horizon_minutes, count(*) as scored, avg(abs(actual - p50))::float8 as mean_absolute_error,
                avg(case when actual between p10 and p90 then 1.0 else 0.0 end)::float8 as coverage
         from forecast.issued
         where actual is not null and target_at > now() - make_interval(days => $1::int)
           and ($2::text is null or lot_id = $2)
         group by horizon_minutes order by horizon_minutes",
    )
    .bind(window_days as i32)
    .bind(lot_id)
    .fetch_all(pool)
    .await
}

/// Risk-band calibration of the last `window_days`, for one lot or all.
pub async fn bands(
    pool: &PgPool,
    window_days: u32,
    lot_id: Option<&str>,
) -> sqlx::Result<Vec<BandRow>> {
    sqlx::query_as(
        "select case when risk_full < 0.2 then 'low' when risk_full < 0.5 then 'medium' else 'high' end as band,
                count(*) as scored, avg(risk_full)::float8 as mean_predicted_risk,
                avg(case when actual = 0 then 1.0 else 0.0 end)::float8 as observed_full_rate
         from forecast.issued
         where actual is not null and target_at > now() - make_interval(days => $1::int)
           and ($2::text is null or lot_id = $2)
         group by 1 order by 1",
    )
    .bind(window_days as i32)
    .bind(lot_id)
    .fetch_all(pool)
    .await
}
