//! Freshness: how old a value may be before it is shown as `stale`, then `expired`, per source.
//!
//! Age is measured from the value's observation time at the source when it has one (parking counts,
//! congestion, weather), and otherwise from the source's last successful collection (events, notices). The
//! thresholds follow each source's own rhythm: the parking portal changes minute by minute and is polled
//! every 2 minutes; Seoul city data lags about 15 minutes and refreshes every 5; events and notices change
//! daily. They are documented in the README ("Freshness thresholds").

use contracts::{
    Timestamp,
    freshness::{Freshness, FreshnessState, SourceId, SourceStatus},
};

use crate::snapshot::SourceHealthRow;

/// How long a value of a source stays `fresh`, and until when it is `stale` (after that: `expired`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub fresh_seconds: i64,
    pub stale_seconds: i64,
}

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;

/// The thresholds of a source.
pub fn thresholds(source: SourceId) -> Thresholds {
    let (fresh_seconds, stale_seconds) = match source {
        SourceId::ParkingPortal => (10 * MINUTE, 30 * MINUTE),
        SourceId::SeoulCitydata => (30 * MINUTE, 90 * MINUTE),
        SourceId::KmaForecast => (4 * HOUR, 8 * HOUR),
        SourceId::SeoulCulturalEvents => (6 * HOUR, 48 * HOUR),
        SourceId::HangangNotices => (HOUR, 6 * HOUR),
        SourceId::HangangjariForecast => (20 * MINUTE, HOUR),
        // Operator notices and curated data are true until someone changes them.
        SourceId::Operator | SourceId::Curated => (i64::MAX / 4, i64::MAX / 2),
        SourceId::Unknown => (0, 0),
    };
    Thresholds { fresh_seconds, stale_seconds }
}

/// The state of a value whose age is measured from `basis`.
pub fn state(source: SourceId, basis: Option<Timestamp>, now: Timestamp) -> FreshnessState {
    let Some(basis) = basis else { return FreshnessState::Unknown };
    let age = basis.seconds_until(now);
    let limits = thresholds(source);
    if age <= limits.fresh_seconds {
        FreshnessState::Fresh
    } else if age <= limits.stale_seconds {
        FreshnessState::Stale
    } else {
        FreshnessState::Expired
    }
}

/// The next instant after `now` at which a value measured from `basis` changes state, if any.
pub fn next_transition(
    source: SourceId,
    basis: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let basis = basis?;
    let limits = thresholds(source);
    [limits.fresh_seconds, limits.stale_seconds]
        .into_iter()
        .filter_map(|offset| basis.as_unix_seconds().checked_add(offset)?.checked_add(1))
        .filter(|&second| second > now.as_unix_seconds())
        .filter_map(|second| Timestamp::from_unix_seconds(second).ok())
        .min()
}

/// What is known about one value, gathered from the snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    pub source: SourceId,
    /// The source's health at snapshot time; `None` if no collection has finished yet.
    pub health: Option<&'a SourceHealthRow>,
    /// Whether the source has ever delivered this item.
    pub present: bool,
    /// When the source observed it.
    pub observed_at: Option<Timestamp>,
    /// When we fetched it (the collection that delivered it).
    pub fetched_at: Option<Timestamp>,
    /// The source does not publish this item live at all.
    pub not_linked: bool,
}

impl Evidence<'_> {
    /// The instant the value's age is measured from.
    pub fn basis(&self) -> Option<Timestamp> {
        if self.present {
            self.observed_at.or(self.fetched_at)
        } else {
            // "No item" is itself a fact, as recent as the last successful collection.
            self.health.and_then(|health| health.last_success_at)
        }
    }

    /// The freshness object shown with the value, as of `now`.
    pub fn assess(&self, now: Timestamp) -> Freshness {
        let last_success = self.health.and_then(|health| health.last_success_at);
        let source_status = match self.health {
            None if !self.present => SourceStatus::NotCollected,
            _ if self.not_linked => SourceStatus::NotLinked,
            Some(health) if health.consecutive_failures > 0 => SourceStatus::Failing,
            _ if !self.present => SourceStatus::NoItem,
            // The latest successful collection did not carry this item: what we show is older news.
            Some(health) if matches!((self.fetched_at, health.last_success_at), (Some(fetched), Some(success)) if fetched < success) => {
                SourceStatus::NoItem
            }
            _ => SourceStatus::Ok,
        };
        Freshness {
            observed_at: if self.present { self.observed_at } else { None },
            fetched_at: last_success.or(self.fetched_at),
            source: self.source,
            state: state(self.source, self.basis(), now),
            source_status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_781_425_200 + seconds).unwrap()
    }

    fn health(last_success: i64, failures: u32) -> SourceHealthRow {
        SourceHealthRow {
            last_attempt_at: at(last_success + 60 * i64::from(failures)),
            last_success_at: Some(at(last_success)),
            consecutive_failures: failures,
            last_outcome: if failures > 0 { "failed".into() } else { "ok".into() },
            last_error_class: (failures > 0).then(|| "timeout".to_owned()),
        }
    }

    #[test]
    fn parking_ages_from_fresh_to_stale_to_expired() {
        let source = SourceId::ParkingPortal;
        assert_eq!(state(source, Some(at(0)), at(600)), FreshnessState::Fresh);
        assert_eq!(state(source, Some(at(0)), at(601)), FreshnessState::Stale);
        assert_eq!(state(source, Some(at(0)), at(1_800)), FreshnessState::Stale);
        assert_eq!(state(source, Some(at(0)), at(1_801)), FreshnessState::Expired);
        assert_eq!(state(source, None, at(0)), FreshnessState::Unknown);
    }

    #[test]
    fn next_transition_is_the_first_boundary_after_now() {
        let source = SourceId::ParkingPortal;
        assert_eq!(next_transition(source, Some(at(0)), at(10)), Some(at(601)));
        assert_eq!(next_transition(source, Some(at(0)), at(700)), Some(at(1_801)));
        assert_eq!(next_transition(source, Some(at(0)), at(1_900)), None);
    }

    #[test]
    fn nothing_collected_yet_is_not_a_failure() {
        let evidence = Evidence {
            source: SourceId::ParkingPortal,
            health: None,
            present: false,
            observed_at: None,
            fetched_at: None,
            not_linked: false,
        };
        let freshness = evidence.assess(at(0));
        assert_eq!(freshness.source_status, SourceStatus::NotCollected);
        assert_eq!(freshness.state, FreshnessState::Unknown);
    }

    #[test]
    fn a_failing_source_keeps_the_last_value_and_ages_it() {
        let health = health(0, 3);
        let evidence = Evidence {
            source: SourceId::ParkingPortal,
            health: Some(&health),
            present: true,
            observed_at: Some(at(0)),
            fetched_at: Some(at(0)),
            not_linked: false,
        };
        let freshness = evidence.assess(at(900));
        assert_eq!(freshness.source_status, SourceStatus::Failing);
        assert_eq!(freshness.state, FreshnessState::Stale);
        assert_eq!(freshness.observed_at, Some(at(0)));
    }

    #[test]
    fn no_item_is_distinct_from_failing() {
        let health = health(0, 0);
        let evidence = Evidence {
            source: SourceId::SeoulCitydata,
            health: Some(&health),
            present: false,
            observed_at: None,
            fetched_at: None,
            not_linked: false,
        };
        let freshness = evidence.assess(at(60));
        assert_eq!(freshness.source_status, SourceStatus::NoItem);
        assert_eq!(freshness.state, FreshnessState::Fresh);
        assert_eq!(freshness.fetched_at, Some(at(0)));
    }

    #[test]
    fn a_value_the_latest_collection_did_not_carry_is_no_item() {
        let health = health(1_200, 0);
        let evidence = Evidence {
            source: SourceId::ParkingPortal,
            health: Some(&health),
            present: true,
            observed_at: Some(at(0)),
            fetched_at: Some(at(0)),
            not_linked: false,
        };
        let freshness = evidence.assess(at(1_200));
        assert_eq!(freshness.source_status, SourceStatus::NoItem);
        assert_eq!(freshness.state, FreshnessState::Stale);
    }
}
