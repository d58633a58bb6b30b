//! Forecast bodies: `GET /v2/lots/{lot_id}/forecast` and `GET /v2/parks/{park_id}/forecast`.
//!
//! Forecasts are separate objects from current values. When there is no evidence the horizons are empty and
//! `reasons` says why; a made-up number is never served.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    enums::{closed_enum, open_enum},
    example::{Example, example_time},
    freshness::{Freshness, FreshnessState, ServedFrom, SourceId, SourceStatus},
    v2::CongestionLevel,
};

closed_enum! {
    /// How much the forecast can be trusted.
    pub enum Confidence {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
}

impl Confidence {
    /// One step less sure (a stale source or an old forecast); `Low` stays `Low`.
    pub fn lowered(self) -> Confidence {
        match self {
            Confidence::High => Confidence::Medium,
            Confidence::Medium | Confidence::Low => Confidence::Low,
        }
    }
}

closed_enum! {
    /// Risk of finding the lot full on arrival, in documented bands of `risk_full`.
    pub enum RiskBand {
        /// `risk_full` < 0.2
        Low => "low",
        /// 0.2 ≤ `risk_full` < 0.5
        Medium => "medium",
        /// `risk_full` ≥ 0.5
        High => "high",
    }
}

open_enum! {
    /// Why a forecast looks the way it does (or is missing).
    pub enum ReasonCode {
        /// The latest observation is older than its source's freshness threshold.
        SourceStale => "source_stale",
        /// Too little history for this day type and time slot.
        FewHistory => "few_history",
        /// No recent observation at all: no forecast is issued.
        NoRecentData => "no_recent_data",
        /// The lot is filling quickly.
        RapidFill => "rapid_fill",
        /// The lot is emptying quickly.
        RapidEmpty => "rapid_empty",
        /// An event near the park changes the usual pattern.
        EventNearby => "event_nearby",
        /// A public holiday: weekend-like demand.
        Holiday => "holiday",
        /// Bad weather lowers demand.
        Weather => "weather",
        /// An announced closure or control applies.
        Closure => "closure",
        /// The official Seoul forecast is part of this congestion forecast.
        OfficialForecast => "official_forecast",
    }
}

/// A parking forecast for one lot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LotForecast {
    pub generated_at: Timestamp,
    pub served_from: ServedFrom,
    /// The earliest instant at which this body changes by time alone (a horizon passing, the forecast or its
    /// observation turning stale); `null` when nothing in it does (see `HomeSummary.valid_until`).
    pub valid_until: Option<Timestamp>,
    pub lot_id: String,
    /// When the forecast was computed; `null` when none has been issued.
    pub issued_at: Option<Timestamp>,
    /// The evidence of the latest observation the forecast starts from.
    pub based_on: Freshness,
    pub capacity: Option<u32>,
    /// One entry per horizon (15, 30, 60, 120 minutes); empty when there is no evidence.
    pub horizons: Vec<LotForecastHorizon>,
    /// Overall confidence; `null` when no forecast is issued.
    pub confidence: Option<Confidence>,
    pub reasons: Vec<ReasonCode>,
    /// How accurate this lot's recent forecasts were; `null` until enough have been scored.
    pub accuracy: Option<ForecastAccuracy>,
}

/// The forecast distribution of available spaces at one horizon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LotForecastHorizon {
    pub horizon_minutes: u16,
    pub target_at: Timestamp,
    /// 10th percentile of available spaces, clamped to [0, capacity].
    pub p10: u32,
    pub p50: u32,
    pub p90: u32,
    /// Probability in [0, 1] that the lot is full at `target_at`.
    pub risk_full: f64,
    pub risk: RiskBand,
    pub confidence: Confidence,
}

/// Recent backtest results for a lot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ForecastAccuracy {
    /// The scoring window.
    pub window_days: u16,
    pub scored_forecasts: u32,
    /// Mean absolute error in spaces, per horizon.
    pub mean_absolute_error: Vec<HorizonError>,
    /// Share of actual values that fell inside p10–p90, in [0, 1].
    pub interval_coverage: f64,
}

/// Mean absolute error at one horizon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HorizonError {
    pub horizon_minutes: u16,
    pub spaces: f64,
}

/// A congestion forecast for one park.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParkForecast {
    pub generated_at: Timestamp,
    pub served_from: ServedFrom,
    /// The earliest instant at which this body changes by time alone (a horizon passing, the forecast or its
    /// observation turning stale); `null` when nothing in it does (see `HomeSummary.valid_until`).
    pub valid_until: Option<Timestamp>,
    pub park_id: String,
    pub forecast: ParkForecastSummary,
}

/// The hourly congestion outlook for a park (also embedded in the park detail).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParkForecastSummary {
    pub issued_at: Option<Timestamp>,
    /// Next hours, earliest first; empty when there is no evidence.
    pub hours: Vec<CongestionForecastHour>,
    pub confidence: Option<Confidence>,
    pub reasons: Vec<ReasonCode>,
}

/// Expected congestion in one hour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CongestionForecastHour {
    pub target_at: Timestamp,
    pub level: CongestionLevel,
    pub population_min: Option<u32>,
    pub population_max: Option<u32>,
    pub confidence: Confidence,
}

impl Example for LotForecast {
    fn example() -> Self {
        let horizon =
            |minutes: u16, p10, p50, p90, risk_full, risk, confidence| LotForecastHorizon {
                horizon_minutes: minutes,
                target_at: example_time(i64::from(minutes) * 60),
                p10,
                p50,
                p90,
                risk_full,
                risk,
                confidence,
            };
        LotForecast {
            generated_at: example_time(0),
            served_from: ServedFrom::HotCache,
            valid_until: Some(example_time(541)),
            lot_id: "yeouido-2".into(),
            issued_at: Some(example_time(-30)),
            based_on: Freshness {
                observed_at: Some(example_time(-60)),
                fetched_at: Some(example_time(-55)),
                source: SourceId::ParkingPortal,
                state: FreshnessState::Fresh,
                source_status: SourceStatus::Ok,
                stale_at: Some(example_time(541)),
                expires_at: Some(example_time(1741)),
                notes: Vec::new(),
            },
            capacity: Some(1_087),
            horizons: vec![
                horizon(15, 96, 118, 139, 0.02, RiskBand::Low, Confidence::High),
                horizon(30, 61, 101, 140, 0.05, RiskBand::Low, Confidence::High),
                horizon(60, 12, 70, 131, 0.21, RiskBand::Medium, Confidence::Medium),
                horizon(120, 0, 38, 120, 0.41, RiskBand::Medium, Confidence::Low),
            ],
            confidence: Some(Confidence::Medium),
            reasons: vec![ReasonCode::RapidFill, ReasonCode::EventNearby],
            accuracy: Some(ForecastAccuracy {
                window_days: 14,
                scored_forecasts: 4_032,
                mean_absolute_error: vec![
                    HorizonError { horizon_minutes: 15, spaces: 9.4 },
                    HorizonError { horizon_minutes: 30, spaces: 17.8 },
                    HorizonError { horizon_minutes: 60, spaces: 31.2 },
                    HorizonError { horizon_minutes: 120, spaces: 48.5 },
                ],
                interval_coverage: 0.79,
            }),
        }
    }
}

impl Example for ParkForecastSummary {
    fn example() -> Self {
        ParkForecastSummary {
            issued_at: Some(example_time(-300)),
            hours: vec![
                CongestionForecastHour {
                    target_at: example_time(2_400),
                    level: CongestionLevel::Crowded,
                    population_min: Some(38_000),
                    population_max: Some(40_000),
                    confidence: Confidence::High,
                },
                CongestionForecastHour {
                    target_at: example_time(6_000),
                    level: CongestionLevel::SlightlyCrowded,
                    population_min: Some(33_000),
                    population_max: Some(35_000),
                    confidence: Confidence::Medium,
                },
            ],
            confidence: Some(Confidence::Medium),
            reasons: vec![ReasonCode::OfficialForecast],
        }
    }
}

impl Example for ParkForecast {
    fn example() -> Self {
        ParkForecast {
            generated_at: example_time(0),
            served_from: ServedFrom::HotCache,
            valid_until: Some(example_time(901)),
            park_id: "yeouido".into(),
            forecast: ParkForecastSummary::example(),
        }
    }
}
