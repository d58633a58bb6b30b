//! The parking forecast of one lot, as a pure function of its evidence.
//!
//! Evidence: the latest value, the recent movement (least-squares change per minute over the last 30
//! minutes) and the historical baseline (mean and variance for the target's day type and quarter-hour slot).
//! Near horizons lean on movement, far ones on the baseline: the weight of movement decays as
//! `exp(-minutes / 40)`, and the current deviation from the baseline decays as `exp(-minutes / 90)`. The
//! distribution is treated as normal: p10/p50/p90 are `p50 ∓ 1.2816 σ`, clamped to [0, capacity], and the
//! risk of finding the lot full is `P(available < max(0.5, 3 % of capacity))`, banded low (< 0.2), medium
//! (< 0.5) and high; `cargo xtask eval forecast` prints how often each band really ended full. No recent
//! value → no forecast.

use std::collections::HashMap;

use contracts::{
    Timestamp,
    v2::{Confidence, ReasonCode, RiskBand},
};
use db::forecasts::Horizon;

use crate::calendar::{self, DayType};

/// The horizons forecast, in minutes.
pub const HORIZONS: [u16; 4] = [15, 30, 60, 120];
/// A latest value older than this is no basis for a forecast.
pub const MAX_EVIDENCE_AGE_MINUTES: f64 = 120.0;
/// Baseline samples needed before the baseline is trusted.
pub const MIN_BASELINE_SAMPLES: i64 = 4;
const Z_90: f64 = 1.281_551_6;
/// The risk counts a lot as full below this share of its capacity: demand past capacity piles up at zero
/// (the distribution is censored there), so the tail just above zero is mostly cars already queueing.
const FULL_BELOW_SHARE: f64 = 0.03;

/// Running statistics of one baseline cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub n: i64,
    pub mean: f64,
    pub variance: f64,
}

/// Everything known about a lot when forecasting.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    pub capacity: Option<u32>,
    /// (observed at, available), newest last; the last one is the latest value.
    pub recent: Vec<(Timestamp, u32)>,
    pub baseline: HashMap<(DayType, i16), Stats>,
    /// The source is stale (the api would show `stale`); confidence drops and says so.
    pub source_stale: bool,
    pub event_nearby: bool,
}

/// A forecast, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    pub horizons: Vec<Horizon>,
    pub confidence: Option<Confidence>,
    pub reasons: Vec<ReasonCode>,
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 via erf).
fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * (x.abs() / std::f64::consts::SQRT_2));
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

/// Least-squares change per minute of `points` (at least 3 spanning 6 minutes), else 0.
fn slope_per_minute(points: &[(Timestamp, u32)]) -> f64 {
    if points.len() < 3 || points[0].0.seconds_until(points[points.len() - 1].0) < 360 {
        return 0.0;
    }
    let origin = points[0].0;
    let xs: Vec<f64> =
        points.iter().map(|(at, _)| origin.seconds_until(*at) as f64 / 60.0).collect();
    let ys: Vec<f64> = points.iter().map(|(_, v)| f64::from(*v)).collect();
    let n = xs.len() as f64;
    let (mean_x, mean_y) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let covariance: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let variance: f64 = xs.iter().map(|x| (x - mean_x).powi(2)).sum();
    if variance == 0.0 { 0.0 } else { covariance / variance }
}

/// Forecasts every horizon from `now`.
pub fn forecast(evidence: &Evidence, now: Timestamp) -> Forecast {
    let Some(&(observed_at, latest)) = evidence.recent.last() else {
        return Forecast {
            horizons: Vec::new(),
            confidence: None,
            reasons: vec![ReasonCode::NoRecentData],
        };
    };
    let age_minutes = (observed_at.seconds_until(now).max(0) as f64) / 60.0;
    if age_minutes > MAX_EVIDENCE_AGE_MINUTES {
        return Forecast {
            horizons: Vec::new(),
            confidence: None,
            reasons: vec![ReasonCode::NoRecentData, ReasonCode::SourceStale],
        };
    }
    let latest = f64::from(latest);
    let capacity = evidence.capacity.map_or_else(
        || evidence.baseline.values().map(|s| s.mean).fold(latest, f64::max) * 1.2,
        f64::from,
    );
    let slope = slope_per_minute(&evidence.recent);
    let now_cell = evidence
        .baseline
        .get(&(calendar::day_type(observed_at), calendar::slot(observed_at)))
        .copied();
    let mut reasons = Vec::new();
    let mut few_history = false;

    let horizons: Vec<Horizon> = HORIZONS
        .iter()
        .map(|&minutes| {
            let target_at =
                Timestamp::from_unix_seconds(now.as_unix_seconds() + i64::from(minutes) * 60)
                    .expect("in range");
            let elapsed = f64::from(minutes) + age_minutes;
            let movement = latest + slope * elapsed;
            let movement_sigma =
                (0.02 * capacity).max(2.0) * (elapsed / 15.0).sqrt() + slope.abs() * elapsed * 0.3;
            let target_cell = evidence
                .baseline
                .get(&(calendar::day_type(target_at), calendar::slot(target_at)))
                .copied()
                .filter(|cell| cell.n >= MIN_BASELINE_SAMPLES);
            let (p50, sigma, samples) =
                match (target_cell, now_cell.filter(|cell| cell.n >= MIN_BASELINE_SAMPLES)) {
                    (Some(target), now_cell) => {
                        let deviation = now_cell.map_or(0.0, |cell| latest - cell.mean);
                        let baseline = target.mean + deviation * (-f64::from(minutes) / 90.0).exp();
                        let weight = (-elapsed / 40.0).exp();
                        let p50 = weight * movement + (1.0 - weight) * baseline;
                        let baseline_sigma = target.variance.max(1.0).sqrt();
                        let sigma = ((weight * movement_sigma).powi(2)
                            + ((1.0 - weight) * baseline_sigma).powi(2))
                        .sqrt();
                        (p50, sigma.max(1.0), target.n)
                    }
                    (None, _) => {
                        few_history = true;
                        // Without history, movement is damped: a trend rarely holds for two hours.
                        let damped = latest + slope * elapsed * (-elapsed / 60.0).exp();
                        (damped, movement_sigma * 1.5, 0)
                    }
                };
            let clamp = |value: f64| value.clamp(0.0, capacity).round() as u32;
            let risk_full = normal_cdf(((FULL_BELOW_SHARE * capacity).max(0.5) - p50) / sigma);
            let risk = if risk_full < 0.2 {
                RiskBand::Low
            } else if risk_full < 0.5 {
                RiskBand::Medium
            } else {
                RiskBand::High
            };
            let mut confidence = if samples >= 20 && minutes <= 60 {
                Confidence::High
            } else if samples >= MIN_BASELINE_SAMPLES {
                Confidence::Medium
            } else {
                Confidence::Low
            };
            if evidence.source_stale {
                confidence = confidence.lowered();
            }
            Horizon {
                horizon_minutes: minutes,
                target_at,
                p10: clamp(p50 - Z_90 * sigma),
                p50: clamp(p50),
                p90: clamp(p50 + Z_90 * sigma),
                risk_full: (risk_full * 1_000.0).round() / 1_000.0,
                risk,
                confidence,
            }
        })
        .collect();

    let per_hour = slope * 60.0;
    if per_hour < -0.1 * capacity {
        reasons.push(ReasonCode::RapidFill);
    } else if per_hour > 0.1 * capacity {
        reasons.push(ReasonCode::RapidEmpty);
    }
    if few_history {
        reasons.push(ReasonCode::FewHistory);
    }
    if evidence.source_stale {
        reasons.push(ReasonCode::SourceStale);
    }
    if evidence.event_nearby {
        reasons.push(ReasonCode::EventNearby);
    }
    if calendar::is_holiday(now) {
        reasons.push(ReasonCode::Holiday);
    }
    let confidence = horizons.iter().find(|h| h.horizon_minutes == 60).map(|h| h.confidence);
    Forecast { horizons, confidence, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> Timestamp {
        // Monday 2026-06-15 14:00 KST.
        Timestamp::from_unix_seconds(1_781_499_600 + minutes * 60).unwrap()
    }

    fn series(values: &[(i64, u32)]) -> Vec<(Timestamp, u32)> {
        values.iter().map(|&(minute, value)| (at(minute), value)).collect()
    }

    #[test]
    fn no_evidence_no_forecast() {
        let forecast = forecast(&Evidence::default(), at(0));
        assert!(forecast.horizons.is_empty());
        assert_eq!(forecast.reasons, vec![ReasonCode::NoRecentData]);
        let old = Evidence { recent: series(&[(-180, 50)]), ..Evidence::default() };
        assert!(super::forecast(&old, at(0)).horizons.is_empty());
    }

    #[test]
    fn a_constant_lot_stays_put_with_few_history() {
        let evidence = Evidence {
            capacity: Some(200),
            recent: series(&[(-20, 80), (-10, 80), (0, 80)]),
            ..Evidence::default()
        };
        let forecast = forecast(&evidence, at(0));
        assert_eq!(forecast.horizons.len(), 4);
        assert!(forecast.horizons.iter().all(|h| h.p50 == 80), "{:?}", forecast.horizons);
        assert!(forecast.horizons.iter().all(|h| h.p10 <= 80 && h.p90 >= 80));
        assert!(forecast.reasons.contains(&ReasonCode::FewHistory));
        assert_eq!(forecast.confidence, Some(Confidence::Low));
    }

    #[test]
    fn a_lot_filling_linearly_is_forecast_to_fill_and_flagged() {
        // Losing 2 spaces a minute, 100 left.
        let evidence = Evidence {
            capacity: Some(300),
            recent: series(&[(-30, 160), (-20, 140), (-10, 120), (0, 100)]),
            ..Evidence::default()
        };
        let forecast = forecast(&evidence, at(0));
        assert!(forecast.reasons.contains(&ReasonCode::RapidFill));
        let by = |m| forecast.horizons.iter().find(|h| h.horizon_minutes == m).unwrap().clone();
        assert!(by(15).p50 < 100 && by(15).p50 > 55, "{:?}", by(15));
        assert!(by(30).p50 < by(15).p50);
        assert!(by(60).risk_full > by(15).risk_full);
    }

    #[test]
    fn far_horizons_follow_the_weekly_pattern() {
        // History says this Monday afternoon slot two hours ahead is nearly full.
        let mut baseline = HashMap::new();
        for slot in 0..96 {
            baseline.insert((DayType::Weekday, slot), Stats { n: 30, mean: 100.0, variance: 25.0 });
        }
        let target = at(120);
        baseline.insert(
            (DayType::Weekday, calendar::slot(target)),
            Stats { n: 30, mean: 10.0, variance: 16.0 },
        );
        let evidence = Evidence {
            capacity: Some(200),
            recent: series(&[(-20, 100), (-10, 100), (0, 100)]),
            baseline,
            ..Evidence::default()
        };
        let forecast = forecast(&evidence, at(0));
        let two_hours = forecast.horizons.iter().find(|h| h.horizon_minutes == 120).unwrap();
        assert!(two_hours.p50 < 40, "{two_hours:?}");
        let quarter = forecast.horizons.iter().find(|h| h.horizon_minutes == 15).unwrap();
        assert!(quarter.p50 > 90, "{quarter:?}");
        assert_eq!(quarter.confidence, Confidence::High);
        assert!(!forecast.reasons.contains(&ReasonCode::FewHistory));
    }

    #[test]
    fn a_stale_source_lowers_confidence_and_says_so() {
        let evidence = Evidence {
            capacity: Some(200),
            recent: series(&[(-40, 80)]),
            source_stale: true,
            ..Evidence::default()
        };
        let forecast = forecast(&evidence, at(0));
        assert!(forecast.reasons.contains(&ReasonCode::SourceStale));
        assert!(forecast.horizons.iter().all(|h| h.confidence == Confidence::Low));
    }

    #[test]
    fn values_stay_within_capacity() {
        let evidence = Evidence {
            capacity: Some(50),
            recent: series(&[(-30, 0), (-15, 20), (0, 50)]),
            ..Evidence::default()
        };
        for horizon in forecast(&evidence, at(0)).horizons {
            assert!(
                horizon.p10 <= horizon.p50 && horizon.p50 <= horizon.p90 && horizon.p90 <= 50,
                "{horizon:?}"
            );
        }
    }

    #[test]
    fn normal_cdf_is_accurate_enough() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-6);
        assert!((normal_cdf(1.281_551_6) - 0.9).abs() < 1e-4);
        assert!((normal_cdf(-1.96) - 0.025).abs() < 1e-4);
    }
}
