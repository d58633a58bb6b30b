//! `hangang.forecast.v1.Forecast`: `Refresh` (from ingest after a cycle), `GetLotForecast`, `GetBacktestReport`.

use contracts::proto::forecast::v1::{
    Confidence as ProtoConfidence, GetBacktestReportRequest, GetBacktestReportResponse,
    GetLotForecastRequest, GetLotForecastResponse, Horizon, HorizonScore, LotForecast,
    RefreshRequest, RefreshResponse, RiskCalibration, forecast_server::Forecast,
};
use sqlx::PgPool;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::{backtest, metrics::Metrics, refresh, warm::Warmer};

/// The gRPC service.
#[derive(Clone, Debug)]
pub struct ForecastService {
    pub pool: PgPool,
    pub metrics: Metrics,
    pub warmer: Option<Warmer>,
    /// Forecasts are issued as of this clock's now.
    pub clock: server::clock::Clock,
}

fn unavailable(error: sqlx::Error) -> Status {
    tracing::error!(%error, "forecast database error");
    Status::unavailable("the forecast store is unavailable")
}

fn proto_time(instant: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: instant.unix_timestamp(), nanos: 0 }
}

fn confidence(value: Option<&str>) -> i32 {
    match value {
        Some("low") => ProtoConfidence::Low as i32,
        Some("medium") => ProtoConfidence::Medium as i32,
        Some("high") => ProtoConfidence::High as i32,
        _ => ProtoConfidence::Unspecified as i32,
    }
}

#[tonic::async_trait]
impl Forecast for ForecastService {
    async fn refresh(
        &self,
        request: Request<RefreshRequest>,
    ) -> Result<Response<RefreshResponse>, Status> {
        let request = request.into_inner();
        // Forecasts are issued as of now; `as_of` only says which observations prompted the refresh.
        let began = std::time::Instant::now();
        let refreshed =
            refresh::refresh(&self.pool, &request.lot_ids, &request.park_ids, self.clock.now())
                .await;
        self.metrics.observe_refresh(began.elapsed(), refreshed.as_ref().ok());
        let refreshed = refreshed.map_err(unavailable)?;
        if let Some(warmer) = &self.warmer {
            warmer.after_refresh();
        }
        tracing::info!(cycle = %request.cycle_id, lots = refreshed.lots, parks = refreshed.parks, scored = refreshed.scored, "refreshed");
        Ok(Response::new(RefreshResponse {
            lots_refreshed: refreshed.lots,
            parks_refreshed: refreshed.parks,
        }))
    }

    async fn get_lot_forecast(
        &self,
        request: Request<GetLotForecastRequest>,
    ) -> Result<Response<GetLotForecastResponse>, Status> {
        let lot_id = request.into_inner().lot_id;
        type Row = (
            OffsetDateTime,
            Option<OffsetDateTime>,
            Option<i32>,
            serde_json::Value,
            Option<String>,
            Vec<String>,
        );
        let row: Option<Row> = sqlx::query_as(
            "select issued_at, based_on_observed_at, capacity, horizons, confidence, reasons
             from forecast.lot_forecast where lot_id = $1",
        )
        .bind(&lot_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let forecast = row.map(|(issued_at, based_on, capacity, horizons, overall, reasons)| {
            let horizons: Vec<db::forecasts::Horizon> =
                serde_json::from_value(horizons).unwrap_or_default();
            LotForecast {
                lot_id: lot_id.clone(),
                issued_at: Some(proto_time(issued_at)),
                based_on_observed_at: based_on.map(proto_time),
                capacity: capacity.and_then(|c| u32::try_from(c).ok()),
                horizons: horizons
                    .iter()
                    .map(|h| Horizon {
                        horizon_minutes: u32::from(h.horizon_minutes),
                        target_at: Some(prost_types::Timestamp {
                            seconds: h.target_at.as_unix_seconds(),
                            nanos: 0,
                        }),
                        p10: h.p10,
                        p50: h.p50,
                        p90: h.p90,
                        risk_full: h.risk_full,
                        confidence: confidence(Some(h.confidence.as_str())),
                    })
                    .collect(),
                confidence: confidence(overall.as_deref()),
                reasons,
            }
        });
        Ok(Response::new(GetLotForecastResponse { forecast }))
    }

    async fn get_backtest_report(
        &self,
        request: Request<GetBacktestReportRequest>,
    ) -> Result<Response<GetBacktestReportResponse>, Status> {
        let request = request.into_inner();
        let window_days = if request.window_days == 0 {
            14
        } else {
            request.window_days.min(refresh::ISSUED_RETENTION_DAYS as u32)
        };
        let lot_id = request.lot_id.as_deref();
        let horizons =
            backtest::horizons(&self.pool, window_days, lot_id).await.map_err(unavailable)?;
        let calibration =
            backtest::bands(&self.pool, window_days, lot_id).await.map_err(unavailable)?;
        Ok(Response::new(GetBacktestReportResponse {
            window_days,
            scored_forecasts: horizons.iter().map(|h| h.scored as u64).sum(),
            horizons: horizons
                .into_iter()
                .map(|h| HorizonScore {
                    horizon_minutes: h.horizon_minutes as u32,
                    scored_forecasts: h.scored as u64,
                    mean_absolute_error: h.mean_absolute_error,
                    interval_coverage: h.coverage,
                })
                .collect(),
            calibration: calibration
                .into_iter()
                .map(|b| RiskCalibration {
                    band: b.band,
                    scored_forecasts: b.scored as u64,
                    mean_predicted_risk: b.mean_predicted_risk,
                    observed_full_rate: b.observed_full_rate,
                })
                .collect(),
        }))
    }
}
