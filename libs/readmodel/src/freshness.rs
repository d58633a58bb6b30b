//! Freshness: judging one value's age and its source's health, by the source's thresholds
//! (`contracts::freshness::SourceId::thresholds`, documented in the README's "Freshness thresholds").
//!
//! Age is measured from the value's observation time at the source when it has one (parking counts,
//! congestion, weather), and otherwise from the source's last successful collection (events, notices).

use contracts::{
    Timestamp,
    freshness::{EvidenceNote, Freshness, FreshnessState, SourceId, SourceStatus},
};

use crate::snapshot::SourceHealthRow;

/// The state of a value whose age is measured from `basis`, by its source's thresholds
/// (`SourceId::thresholds`).
pub fn state(source: SourceId, basis: Option<Timestamp>, now: Timestamp) -> FreshnessState {
    let Some(basis) = basis else { return FreshnessState::Unknown };
    let Some(limits) = source.thresholds() else { return FreshnessState::Fresh };
    let age = basis.seconds_until(now);
    if age <= limits.fresh_seconds {
        FreshnessState::Fresh
    } else if age <= limits.stale_seconds {
        FreshnessState::Stale
    } else {
        FreshnessState::Expired
    }
}

/// When a value whose age is measured from `basis` turns stale and then expired: the first second at which
/// [`state`] says so. `None` for a value of unknown age or of a source that never ages.
pub fn transitions(
    source: SourceId,
    basis: Option<Timestamp>,
) -> (Option<Timestamp>, Option<Timestamp>) {
    let (Some(basis), Some(limits)) = (basis, source.thresholds()) else { return (None, None) };
    let after = |offset: i64| {
        basis
            .as_unix_seconds()
            .checked_add(offset)
            .and_then(|second| second.checked_add(1))
            .and_then(|second| Timestamp::from_unix_seconds(second).ok())
    };
    (after(limits.fresh_seconds), after(limits.stale_seconds))
}

/// The next instant after `now` at which a value measured from `basis` changes state, if any.
pub fn next_transition(
    source: SourceId,
    basis: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let (stale_at, expires_at) = transitions(source, basis);
    [stale_at, expires_at].into_iter().flatten().filter(|&instant| instant > now).min()
}

/// The health of a source as one value sees it: the source's, narrowed to the part (park) the value belongs
/// to when the source is collected per park and that part has its own record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// The last collection that succeeded for this value's part (or the whole source).
    pub last_success_at: Option<Timestamp>,
    /// Whole collections are failing, or this part's share of them is.
    pub failing: bool,
}

impl Health {
    /// The health of `part` of a source, falling back to the source's own where the part has no record.
    pub fn of(source: &SourceHealthRow, part: Option<&str>) -> Health {
        let part = part.and_then(|part| source.parts.get(part));
        Health {
            last_success_at: part.map_or(source.last_success_at, |part| part.last_success_at),
            failing: source.consecutive_failures > 0
                || part.is_some_and(|part| part.consecutive_failures > 0),
        }
    }
}

/// What is known about one value, gathered from the snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Evidence {
    pub source: SourceId,
    /// The source's health at snapshot time, for this value's part; `None` if no collection has finished yet.
    pub health: Option<Health>,
    /// Whether the source has ever delivered this item.
    pub present: bool,
    /// When the source observed it.
    pub observed_at: Option<Timestamp>,
    /// When we fetched it (the last collection that carried it).
    pub fetched_at: Option<Timestamp>,
    /// The source does not publish this item live at all.
    pub not_linked: bool,
    /// The value shown is the source's, lowered to the lot's capacity.
    pub clamped: bool,
}

impl Evidence {
    /// The instant the value's age is measured from.
    pub fn basis(&self) -> Option<Timestamp> {
        if self.present {
            self.observed_at.or(self.fetched_at)
        } else {
            // "No item" is itself a fact, as recent as the last successful collection.
            self.health.and_then(|health| health.last_success_at)
        }
    }

    /// The health of the feed behind the value, independent of its age.
    pub fn source_status(&self) -> SourceStatus {
        match self.health {
            None if !self.present => SourceStatus::NotCollected,
            _ if self.not_linked => SourceStatus::NotLinked,
            Some(health) if health.failing => SourceStatus::Failing,
            _ if !self.present => SourceStatus::NoItem,
            // The latest successful collection did not carry this item (a no-data answer, a lot missing from
            // its page): what we show is older news, aging by its own observation time.
            Some(Health { last_success_at: Some(success), .. })
                if self.fetched_at.is_none_or(|fetched| fetched < success) =>
            {
                SourceStatus::NoItem
            }
            _ => SourceStatus::Ok,
        }
    }

    /// The freshness object shown with the value, as of `now`.
    pub fn assess(&self, now: Timestamp) -> Freshness {
        let last_success = self.health.and_then(|health| health.last_success_at);
        let basis = self.basis();
        let (stale_at, expires_at) = transitions(self.source, basis);
        Freshness {
            observed_at: if self.present { self.observed_at } else { None },
            fetched_at: last_success.or(self.fetched_at),
            source: self.source,
            state: state(self.source, basis, now),
            source_status: self.source_status(),
            stale_at,
            expires_at,
            notes: if self.clamped { vec![EvidenceNote::ClampedToCapacity] } else { Vec::new() },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::snapshot::{PartHealthRow, RunOutcome};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_781_425_200 + seconds).unwrap()
    }

    fn health(last_success: i64, failures: u32) -> Health {
        Health { last_success_at: Some(at(last_success)), failing: failures > 0 }
    }

    fn evidence(source: SourceId, health: Option<Health>, observed: Option<i64>) -> Evidence {
        Evidence {
            source,
            health,
            present: observed.is_some(),
            observed_at: observed.map(at),
            fetched_at: observed.map(at),
            not_linked: false,
            clamped: false,
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
    fn transitions_are_the_first_second_of_each_state_and_absent_when_age_is_unknown() {
        assert_eq!(
            transitions(SourceId::ParkingPortal, Some(at(0))),
            (Some(at(601)), Some(at(1_801)))
        );
        assert_eq!(transitions(SourceId::ParkingPortal, None), (None, None));
        assert_eq!(transitions(SourceId::Operator, Some(at(0))), (None, None));
        for source in [SourceId::SeoulCitydata, SourceId::KmaForecast, SourceId::HangangNotices] {
            let (stale_at, expires_at) = transitions(source, Some(at(0)));
            let second_before = |t: Option<Timestamp>| {
                Timestamp::from_unix_seconds(t.unwrap().as_unix_seconds() - 1).unwrap()
            };
            assert_eq!(state(source, Some(at(0)), second_before(stale_at)), FreshnessState::Fresh);
            assert_eq!(state(source, Some(at(0)), stale_at.unwrap()), FreshnessState::Stale);
            assert_eq!(
                state(source, Some(at(0)), second_before(expires_at)),
                FreshnessState::Stale
            );
            assert_eq!(state(source, Some(at(0)), expires_at.unwrap()), FreshnessState::Expired);
        }
    }

    #[test]
    fn nothing_collected_yet_is_not_a_failure() {
        let freshness = evidence(SourceId::ParkingPortal, None, None).assess(at(0));
        assert_eq!(freshness.source_status, SourceStatus::NotCollected);
        assert_eq!(freshness.state, FreshnessState::Unknown);
        assert_eq!((freshness.stale_at, freshness.expires_at), (None, None));
    }

    #[test]
    fn a_failing_source_keeps_the_last_value_and_ages_it() {
        let freshness =
            evidence(SourceId::ParkingPortal, Some(health(0, 3)), Some(0)).assess(at(900));
        assert_eq!(freshness.source_status, SourceStatus::Failing);
        assert_eq!(freshness.state, FreshnessState::Stale);
        assert_eq!(freshness.observed_at, Some(at(0)));
        assert_eq!(freshness.stale_at, Some(at(601)));
    }

    #[test]
    fn no_item_is_distinct_from_failing() {
        let freshness = evidence(SourceId::SeoulCitydata, Some(health(0, 0)), None).assess(at(60));
        assert_eq!(freshness.source_status, SourceStatus::NoItem);
        assert_eq!(freshness.state, FreshnessState::Fresh);
        assert_eq!(freshness.fetched_at, Some(at(0)));
    }

    #[test]
    fn a_value_the_latest_collection_did_not_carry_is_no_item_and_keeps_its_own_age() {
        let freshness =
            evidence(SourceId::ParkingPortal, Some(health(1_200, 0)), Some(0)).assess(at(1_200));
        assert_eq!(freshness.source_status, SourceStatus::NoItem);
        assert_eq!(freshness.state, FreshnessState::Stale);
        assert_eq!(freshness.observed_at, Some(at(0)));
    }

    #[test]
    fn a_value_carried_by_the_latest_collection_is_ok() {
        let freshness =
            evidence(SourceId::ParkingPortal, Some(health(0, 0)), Some(0)).assess(at(30));
        assert_eq!(freshness.source_status, SourceStatus::Ok);
        assert!(freshness.notes.is_empty());
    }

    #[test]
    fn a_part_has_its_own_health_and_a_failing_source_fails_every_part() {
        let part = |last_success: i64, failures: u32| PartHealthRow {
            last_attempt_at: at(600),
            last_success_at: Some(at(last_success)),
            consecutive_failures: failures,
            last_error_class: (failures > 0).then(|| "http_status".to_owned()),
        };
        let mut source = SourceHealthRow {
            last_attempt_at: at(600),
            last_success_at: Some(at(600)),
            consecutive_failures: 0,
            last_outcome: RunOutcome::Partial,
            last_error_class: Some("http_status".into()),
            parts: BTreeMap::from([("ichon".into(), part(0, 2)), ("banpo".into(), part(600, 0))]),
            anomalies: Vec::new(),
        };
        assert_eq!(
            Health::of(&source, Some("ichon")),
            Health { last_success_at: Some(at(0)), failing: true }
        );
        assert_eq!(
            Health::of(&source, Some("banpo")),
            Health { last_success_at: Some(at(600)), failing: false }
        );
        // A park without a record of its own takes the source's.
        assert_eq!(
            Health::of(&source, Some("jamsil")),
            Health { last_success_at: Some(at(600)), failing: false }
        );
        source.consecutive_failures = 1;
        assert!(Health::of(&source, Some("banpo")).failing);
    }

    #[test]
    fn a_clamped_value_says_so() {
        let mut clamped = evidence(SourceId::ParkingPortal, Some(health(0, 0)), Some(0));
        clamped.clamped = true;
        assert_eq!(clamped.assess(at(0)).notes, vec![EvidenceNote::ClampedToCapacity]);
    }
}
