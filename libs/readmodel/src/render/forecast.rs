//! `GET /v2/lots/{lot_id}/forecast`, `GET /v2/parks/{park_id}/forecast` and the park detail's outlook: stored
//! forecasts adjusted for what is true at serve time.

use contracts::{
    Timestamp,
    freshness::{FreshnessState, ServedFrom, SourceId},
    v2::{self, Confidence, Lang, ReasonCode},
};

use super::{
    context::Render,
    values::{lot_based_on, lot_capacity},
};
use crate::{
    freshness,
    snapshot::{ParkData, Snapshot},
};

/// Whether a stored forecast issued at `issued_at` is past its own freshness; the moment it will be is a change.
fn forecast_stale(r: &Render<'_>, issued_at: Timestamp) -> bool {
    let source = SourceId::HangangjariForecast;
    r.changes_at(freshness::next_transition(source, Some(issued_at), r.now));
    freshness::state(source, Some(issued_at), r.now) != FreshnessState::Fresh
}

/// Whether a forecast target still lies ahead; the moment it passes is a change.
fn ahead(r: &Render<'_>, target_at: Timestamp) -> bool {
    r.changes_at(Some(target_at));
    target_at > r.now
}

/// Stored reasons, plus `source_stale` when the forecast or its observation has gone stale since.
fn serve_time_reasons(stored: &[ReasonCode], stale: bool) -> Vec<ReasonCode> {
    let mut reasons = stored.to_vec();
    if stale && !reasons.contains(&ReasonCode::SourceStale) {
        reasons.push(ReasonCode::SourceStale);
    }
    reasons
}

/// `GET /v2/lots/{lot_id}/forecast`; `None` for an unknown lot.
pub fn lot_forecast(
    snapshot: &Snapshot,
    lot_id: &str,
    now: Timestamp,
    served_from: ServedFrom,
) -> Option<v2::LotForecast> {
    let (park, lot) = snapshot.lot(lot_id)?;
    let r = Render::new(snapshot, Lang::Ko, now);
    let based_on = lot_based_on(&r, park, lot);
    let capacity = lot_capacity(lot);
    let Some(stored) = &lot.forecast else {
        let reason =
            if lot.latest.is_none() { ReasonCode::NoRecentData } else { ReasonCode::FewHistory };
        return Some(v2::LotForecast {
            generated_at: snapshot.built_at,
            served_from,
            valid_until: r.valid_until(),
            lot_id: lot.lot_id.clone(),
            issued_at: None,
            based_on,
            capacity,
            horizons: Vec::new(),
            confidence: None,
            reasons: vec![reason],
            accuracy: None,
        });
    };
    let stale = forecast_stale(&r, stored.issued_at) || based_on.state != FreshnessState::Fresh;
    let adjust = |confidence: Confidence| if stale { confidence.lowered() } else { confidence };
    let horizons: Vec<v2::LotForecastHorizon> = stored
        .horizons
        .iter()
        .filter(|horizon| ahead(&r, horizon.target_at))
        .map(|horizon| v2::LotForecastHorizon {
            horizon_minutes: horizon.horizon_minutes,
            target_at: horizon.target_at,
            p10: horizon.p10,
            p50: horizon.p50,
            p90: horizon.p90,
            risk_full: horizon.risk_full,
            risk: horizon.risk,
            confidence: adjust(horizon.confidence),
        })
        .collect();
    let mut reasons = serve_time_reasons(&stored.reasons, stale);
    if horizons.is_empty() && !reasons.contains(&ReasonCode::NoRecentData) {
        reasons.push(ReasonCode::NoRecentData);
    }
    let confidence = (!horizons.is_empty()).then(|| stored.confidence.map(adjust)).flatten();
    Some(v2::LotForecast {
        generated_at: snapshot.built_at,
        served_from,
        valid_until: r.valid_until(),
        lot_id: lot.lot_id.clone(),
        issued_at: Some(stored.issued_at),
        based_on,
        capacity: stored.capacity.or(capacity),
        horizons,
        confidence,
        reasons,
        accuracy: stored.accuracy.as_ref().map(|accuracy| v2::ForecastAccuracy {
            window_days: accuracy.window_days,
            scored_forecasts: accuracy.scored_forecasts,
            mean_absolute_error: accuracy
                .mean_absolute_error
                .iter()
                .map(|error| v2::HorizonError {
                    horizon_minutes: error.horizon_minutes,
                    spaces: error.spaces,
                })
                .collect(),
            interval_coverage: accuracy.interval_coverage,
        }),
    })
}

/// The hourly congestion outlook of a park.
pub(crate) fn park_forecast_summary(r: &Render<'_>, park: &ParkData) -> v2::ParkForecastSummary {
    let Some(stored) = &park.forecast else {
        let reason = if park.congestion.is_none() {
            ReasonCode::NoRecentData
        } else {
            ReasonCode::FewHistory
        };
        return v2::ParkForecastSummary {
            issued_at: None,
            hours: Vec::new(),
            confidence: None,
            reasons: vec![reason],
        };
    };
    let stale = forecast_stale(r, stored.issued_at);
    let adjust = |confidence: Confidence| if stale { confidence.lowered() } else { confidence };
    let hours: Vec<v2::CongestionForecastHour> = stored
        .hours
        .iter()
        .filter(|hour| ahead(r, hour.target_at))
        .map(|hour| v2::CongestionForecastHour {
            target_at: hour.target_at,
            level: hour.level,
            population_min: hour.population_min,
            population_max: hour.population_max,
            confidence: adjust(hour.confidence),
        })
        .collect();
    let mut reasons = serve_time_reasons(&stored.reasons, stale);
    if hours.is_empty() && !reasons.contains(&ReasonCode::NoRecentData) {
        reasons.push(ReasonCode::NoRecentData);
    }
    let confidence = (!hours.is_empty()).then(|| stored.confidence.map(adjust)).flatten();
    v2::ParkForecastSummary { issued_at: Some(stored.issued_at), hours, confidence, reasons }
}

/// `GET /v2/parks/{park_id}/forecast`; `None` for an unknown park.
pub fn park_forecast(
    snapshot: &Snapshot,
    park_id: &str,
    now: Timestamp,
    served_from: ServedFrom,
) -> Option<v2::ParkForecast> {
    let park = snapshot.park(park_id)?;
    let r = Render::new(snapshot, Lang::Ko, now);
    let forecast = park_forecast_summary(&r, park);
    Some(v2::ParkForecast {
        generated_at: snapshot.built_at,
        served_from,
        valid_until: r.valid_until(),
        park_id: park.park_id.clone(),
        forecast,
    })
}
