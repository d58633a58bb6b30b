//! The hourly congestion outlook of one park, as a pure function of Seoul's official forecast and the park's
//! own history.
//!
//! Levels are treated as an ordinal scale (relaxed 0 … crowded 3). For each of the next hours:
//! - with an official hour and enough history for that day type and hour ([`MIN_HISTORY`] readings), the level
//!   is `round(0.75 × official + 0.25 × historical mean)`: the city sees more than we do, our history corrects
//!   its habitual bias at this park. Confidence is high within three hours when the two agree within one
//!   level, medium otherwise;
//! - with an official hour and too little history, the official level as is (medium beyond three hours);
//! - with history only (past the official horizon, or the city's forecast missing), the historical mean at
//!   low or medium confidence by how consistent the history is;
//! - with neither, no hour: no evidence, no number.
//!
//! A stale source lowers every confidence one step and says so.

use std::collections::HashMap;

use contracts::{
    Timestamp,
    v2::{Confidence, CongestionLevel, ReasonCode},
};
use db::forecasts::Hour;

use crate::calendar::{self, DayType};

/// History readings needed before a day type × hour is trusted.
pub const MIN_HISTORY: u32 = 4;
const OFFICIAL_WEIGHT: f64 = 0.75;
const LEVELS: [CongestionLevel; 4] = [
    CongestionLevel::Relaxed,
    CongestionLevel::Normal,
    CongestionLevel::SlightlyCrowded,
    CongestionLevel::Crowded,
];

/// The ordinal position of a level (relaxed 0 … crowded 3); `None` for values this build does not know.
pub fn level_index(level: CongestionLevel) -> Option<usize> {
    LEVELS.iter().position(|known| *known == level)
}

/// One hour of the official forecast.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OfficialHour {
    pub target_at: Timestamp,
    pub level: CongestionLevel,
    pub population_min: Option<u32>,
    pub population_max: Option<u32>,
}

/// How many times each level was observed, per day type and hour of the day in Seoul.
pub type History = HashMap<(DayType, u8), [u32; 4]>;

/// Everything known about a park when forecasting.
#[derive(Clone, Debug, Default)]
pub struct ParkEvidence {
    /// Official hours, any order.
    pub official: Vec<OfficialHour>,
    pub history: History,
    pub source_stale: bool,
    pub event_nearby: bool,
}

/// An outlook, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub struct Outlook {
    pub hours: Vec<Hour>,
    pub confidence: Option<Confidence>,
    pub reasons: Vec<ReasonCode>,
}

fn seoul_hour(instant: Timestamp) -> u8 {
    (calendar::slot(instant) / 4) as u8
}

/// The outlook for the `hours` whole hours after `now`.
pub fn outlook(evidence: &ParkEvidence, now: Timestamp, hours: u32) -> Outlook {
    let first_hour = (now.as_unix_seconds() / 3_600 + 1) * 3_600;
    let official: HashMap<i64, &OfficialHour> = evidence
        .official
        .iter()
        .map(|hour| (hour.target_at.as_unix_seconds() / 3_600 * 3_600, hour))
        .collect();
    let mut used_official = false;
    let mut few_history = false;
    let mut forecast_hours = Vec::new();
    for step in 0..i64::from(hours) {
        let start = first_hour + step * 3_600;
        let target_at = Timestamp::from_unix_seconds(start).expect("in range");
        let ahead_hours = (start - now.as_unix_seconds()) / 3_600;
        let counts = evidence
            .history
            .get(&(calendar::day_type(target_at), seoul_hour(target_at)))
            .copied()
            .unwrap_or_default();
        let samples: u32 = counts.iter().sum();
        let history_mean = (samples >= MIN_HISTORY).then(|| {
            counts.iter().enumerate().map(|(index, n)| index as f64 * f64::from(*n)).sum::<f64>()
                / f64::from(samples)
        });
        let official_hour = official.get(&start).filter(|hour| level_index(hour.level).is_some());
        let (index, population, mut confidence) = match (official_hour, history_mean) {
            (Some(hour), Some(mean)) => {
                used_official = true;
                let official_index = level_index(hour.level).expect("filtered") as f64;
                let blended =
                    (OFFICIAL_WEIGHT * official_index + (1.0 - OFFICIAL_WEIGHT) * mean).round();
                let agree = (official_index - mean).abs() <= 1.0;
                let confidence =
                    if ahead_hours < 3 && agree { Confidence::High } else { Confidence::Medium };
                let population = (blended == official_index).then_some(**hour);
                (blended as usize, population, confidence)
            }
            (Some(hour), None) => {
                used_official = true;
                few_history = true;
                let confidence =
                    if ahead_hours < 3 { Confidence::High } else { Confidence::Medium };
                (level_index(hour.level).expect("filtered"), Some(**hour), confidence)
            }
            (None, Some(mean)) => {
                // Consistent history (one level most of the time) earns medium confidence.
                let top = counts.iter().max().copied().unwrap_or(0);
                let consistent = f64::from(top) >= 0.7 * f64::from(samples);
                let confidence = if consistent { Confidence::Medium } else { Confidence::Low };
                (mean.round() as usize, None, confidence)
            }
            (None, None) => {
                few_history = true;
                continue;
            }
        };
        if evidence.source_stale {
            confidence = confidence.lowered();
        }
        forecast_hours.push(Hour {
            target_at,
            level: LEVELS[index.min(3)],
            population_min: population.and_then(|hour| hour.population_min),
            population_max: population.and_then(|hour| hour.population_max),
            confidence,
        });
    }

    let mut reasons = Vec::new();
    if forecast_hours.is_empty() {
        reasons.push(ReasonCode::NoRecentData);
    }
    if used_official {
        reasons.push(ReasonCode::OfficialForecast);
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
    let confidence = forecast_hours.first().map(|hour| hour.confidence);
    Outlook { hours: forecast_hours, confidence, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2026-06-15 14:10 KST.
    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_781_500_200).unwrap()
    }

    fn hour_after(now: Timestamp, hours: i64) -> Timestamp {
        Timestamp::from_unix_seconds((now.as_unix_seconds() / 3_600 + hours) * 3_600).unwrap()
    }

    fn official(hours: i64, level: CongestionLevel) -> OfficialHour {
        OfficialHour {
            target_at: hour_after(now(), hours),
            level,
            population_min: Some(1_000),
            population_max: Some(2_000),
        }
    }

    /// Every weekday hour usually `counts`.
    fn history(counts: [u32; 4]) -> History {
        (0..24).map(|hour| ((DayType::Weekday, hour), counts)).collect()
    }

    #[test]
    fn no_evidence_no_outlook() {
        let outlook = outlook(&ParkEvidence::default(), now(), 12);
        assert!(outlook.hours.is_empty());
        assert_eq!(outlook.confidence, None);
        assert!(outlook.reasons.contains(&ReasonCode::NoRecentData));
    }

    #[test]
    fn official_hours_are_kept_when_history_agrees() {
        let evidence = ParkEvidence {
            official: vec![
                official(1, CongestionLevel::Normal),
                official(2, CongestionLevel::Normal),
            ],
            history: history([0, 10, 0, 0]),
            ..ParkEvidence::default()
        };
        let outlook = outlook(&evidence, now(), 12);
        assert_eq!(outlook.hours.len(), 12, "history fills the hours past the official ones");
        assert_eq!(outlook.hours[0].level, CongestionLevel::Normal);
        assert_eq!(outlook.hours[0].population_min, Some(1_000));
        assert_eq!(outlook.hours[0].confidence, Confidence::High);
        assert_eq!(outlook.hours[5].confidence, Confidence::Medium, "a consistent history alone");
        assert_eq!(outlook.hours[5].population_min, None);
        assert_eq!(outlook.reasons, vec![ReasonCode::OfficialForecast]);
    }

    #[test]
    fn history_pulls_an_official_level_that_is_habitually_off() {
        // The city says normal; this park has been crowded at this hour every weekday.
        let evidence = ParkEvidence {
            official: vec![official(1, CongestionLevel::Normal)],
            history: history([0, 0, 0, 10]),
            ..ParkEvidence::default()
        };
        let first = &outlook(&evidence, now(), 1).hours[0];
        // 0.75 × 1 + 0.25 × 3 = 1.5 → 2.
        assert_eq!(first.level, CongestionLevel::SlightlyCrowded);
        assert_eq!(first.confidence, Confidence::Medium, "the two disagree by two levels");
        assert_eq!(first.population_min, None, "the city's numbers belong to its own level");
    }

    #[test]
    fn few_history_and_stale_source_lower_confidence_and_say_so() {
        let evidence = ParkEvidence {
            official: vec![official(1, CongestionLevel::Crowded)],
            history: history([1, 1, 0, 0]),
            source_stale: true,
            event_nearby: true,
        };
        let outlook = outlook(&evidence, now(), 3);
        assert_eq!(
            outlook.hours.len(),
            1,
            "hours with neither official nor enough history are left out"
        );
        assert_eq!(outlook.hours[0].level, CongestionLevel::Crowded);
        assert_eq!(
            outlook.hours[0].confidence,
            Confidence::Medium,
            "high, lowered for the stale source"
        );
        assert_eq!(
            outlook.reasons,
            vec![
                ReasonCode::OfficialForecast,
                ReasonCode::FewHistory,
                ReasonCode::SourceStale,
                ReasonCode::EventNearby
            ]
        );
    }
}
