//! The JSON columns of the `forecast` schema, in the forecast service's own shapes rather than the app's: written
//! by `services/forecast`, read by the read model and forecast's gRPC. The app's contract can gain fields without
//! a database change, and a stored forecast never has to be read through a frozen DTO. The field names are the
//! ones these columns have always held, so every stored row reads.

use contracts::{
    Timestamp,
    v2::{Confidence, CongestionLevel, RiskBand},
};
use serde::{Deserialize, Serialize};

/// One horizon of a lot forecast (`forecast.lot_forecast.horizons[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Horizon {
    pub horizon_minutes: u16,
    pub target_at: Timestamp,
    /// Percentiles of available spaces, within [0, capacity].
    pub p10: u32,
    pub p50: u32,
    pub p90: u32,
    /// Probability in [0, 1] that the lot is full at `target_at`.
    pub risk_full: f64,
    pub risk: RiskBand,
    pub confidence: Confidence,
}

/// One hour of a park's congestion outlook (`forecast.park_forecast.hours[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hour {
    pub target_at: Timestamp,
    pub level: CongestionLevel,
    pub population_min: Option<u32>,
    pub population_max: Option<u32>,
    pub confidence: Confidence,
}

/// How accurate a lot's recent forecasts were (`forecast.lot_forecast.accuracy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub window_days: u16,
    pub scored_forecasts: u32,
    pub mean_absolute_error: Vec<HorizonError>,
    /// Share of actual values inside p10–p90, in [0, 1].
    pub interval_coverage: f64,
}

/// Mean absolute error at one horizon, in spaces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HorizonError {
    pub horizon_minutes: u16,
    pub spaces: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stored_before_these_types_read() {
        let horizons = serde_json::json!([{"horizon_minutes": 15, "target_at": "2026-06-14T08:35:00Z", "p10": 96,
            "p50": 118, "p90": 139, "risk_full": 0.02, "risk": "low", "confidence": "high"}]);
        let read: Vec<Horizon> = serde_json::from_value(horizons.clone()).unwrap();
        assert_eq!(serde_json::to_value(&read).unwrap(), horizons);
        let hours = serde_json::json!([{"target_at": "2026-06-14T09:00:00Z", "level": "crowded",
            "population_min": 38000, "population_max": null, "confidence": "medium"}]);
        let read: Vec<Hour> = serde_json::from_value(hours.clone()).unwrap();
        assert_eq!(serde_json::to_value(&read).unwrap(), hours);
        let accuracy = serde_json::json!({"window_days": 14, "scored_forecasts": 40,
            "mean_absolute_error": [{"horizon_minutes": 15, "spaces": 9.4}], "interval_coverage": 0.8});
        let read: Accuracy = serde_json::from_value(accuracy.clone()).unwrap();
        assert_eq!(serde_json::to_value(&read).unwrap(), accuracy);
    }
}
