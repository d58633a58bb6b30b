//! The decision for one candidate: does this fact trigger this preference, and if so, push now or suppress,
//! and why. Pure functions, so every rule is tested without a database.

use contracts::{
    Timestamp,
    fact::{Fact, FactKind},
    freshness::SourceId,
    v2::{CongestionLevel, SignalType, TargetKind, Weekday},
};

/// One stored preference of one installation, typed when read from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Preference {
    pub installation_id: String,
    pub position: i16,
    pub target_kind: TargetKind,
    pub target_id: String,
    /// `Unknown` for a signal a newer release stored: it triggers nothing here.
    pub signal: SignalType,
    pub threshold: Option<i64>,
    /// Empty = every day.
    pub weekdays: Vec<Weekday>,
    pub enabled: bool,
    pub installation_active: bool,
    /// Minutes after midnight in Asia/Seoul.
    pub quiet_hours: Option<(u16, u16)>,
    /// The installation's app release (`None` when its `app_version` does not parse), which decides whether
    /// its bundle has an alert's localization key.
    pub app_release: Option<contracts::app_release::AppRelease>,
    /// The installation's language among the app's, for alerts rendered by the server.
    pub lang: contracts::v2::Lang,
}

/// Why a triggered candidate was not alerted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suppression {
    /// Inside the installation's quiet hours, or on a weekday the preference excludes.
    QuietHours,
    /// The observation is too old to act on.
    SourceStale,
    /// The same alert was sent for this target and signal moments ago.
    CoolDown,
    /// A threshold alert without a remaining-space value.
    NoActionableNumber,
    /// The preference is switched off.
    PreferenceOff,
    /// APNs reported the installation's token dead.
    InstallationInactive,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::QuietHours => "quiet_hours",
            Suppression::SourceStale => "source_stale",
            Suppression::CoolDown => "cool_down",
            Suppression::NoActionableNumber => "no_actionable_number",
            Suppression::PreferenceOff => "preference_off",
            Suppression::InstallationInactive => "installation_inactive",
        }
    }
}

/// The outcome for a triggered candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    PushNow,
    Suppress(Suppression),
}

/// How old an observation may be for an alert to still be worth sending: its source's alert threshold.
pub fn freshness_limit_seconds(kind: FactKind) -> Option<i64> {
    let source = match kind {
        FactKind::LotAvailability => SourceId::ParkingPortal,
        FactKind::CongestionLevel => SourceId::SeoulCitydata,
        FactKind::EventCancelled | FactKind::ParkClosed | FactKind::EventReinstated => return None,
    };
    source.thresholds().and_then(|thresholds| thresholds.alert_seconds)
}

/// How long after an alert the same alert (target and signal) is held back.
pub const COOL_DOWN_SECONDS: i64 = 30 * 60;

fn congestion_rank(level: CongestionLevel) -> u8 {
    match level {
        CongestionLevel::Relaxed => 0,
        CongestionLevel::Normal => 1,
        CongestionLevel::SlightlyCrowded => 2,
        CongestionLevel::Crowded => 3,
    }
}

/// Whether `fact` is what `preference` asks to hear about.
pub fn triggers(fact: &Fact, preference: &Preference) -> bool {
    let target_matches = match preference.target_kind {
        TargetKind::Lot => fact.lot_id.as_deref() == Some(preference.target_id.as_str()),
        TargetKind::Park => fact.park_id == preference.target_id,
    };
    if !target_matches {
        return false;
    }
    match (fact.kind, preference.signal) {
        (FactKind::LotAvailability, SignalType::LotAvailableBelow) => {
            match (fact.previous_value, preference.threshold) {
                // Without a current value the crossing is unknown; decided as "no actionable number".
                (Some(before), Some(threshold)) => {
                    before >= threshold && fact.current_value.is_none_or(|now| now < threshold)
                }
                _ => false,
            }
        }
        (FactKind::LotAvailability, SignalType::LotAvailableAbove) => {
            match (fact.previous_value, preference.threshold) {
                (Some(before), Some(threshold)) => {
                    before <= threshold && fact.current_value.is_none_or(|now| now > threshold)
                }
                _ => false,
            }
        }
        (FactKind::LotAvailability, SignalType::LotFull) => {
            fact.previous_value.is_some_and(|before| before > 0)
                && fact.current_value.is_none_or(|now| now == 0)
        }
        (
            FactKind::CongestionLevel,
            signal @ (SignalType::CongestionEased | SignalType::CongestionRose),
        ) => match (fact.previous_level, fact.current_level) {
            (Some(before), Some(now)) => {
                let (before, now) = (congestion_rank(before), congestion_rank(now));
                if signal == SignalType::CongestionEased { now < before } else { now > before }
            }
            _ => false,
        },
        // A relisted event alerts only those who asked for exactly that, not every cancellation subscriber.
        (FactKind::EventCancelled, SignalType::EventCancelled)
        | (FactKind::ParkClosed, SignalType::ParkClosed)
        | (FactKind::EventReinstated, SignalType::EventReinstated) => true,
        _ => false,
    }
}

fn seoul_weekday_and_minute(now: Timestamp) -> (Weekday, u16) {
    let local = contracts::seoul::datetime(now);
    let weekday = match local.weekday() {
        jiff::civil::Weekday::Monday => Weekday::Mon,
        jiff::civil::Weekday::Tuesday => Weekday::Tue,
        jiff::civil::Weekday::Wednesday => Weekday::Wed,
        jiff::civil::Weekday::Thursday => Weekday::Thu,
        jiff::civil::Weekday::Friday => Weekday::Fri,
        jiff::civil::Weekday::Saturday => Weekday::Sat,
        jiff::civil::Weekday::Sunday => Weekday::Sun,
    };
    (weekday, local.hour() as u16 * 60 + local.minute() as u16)
}

/// Whether `minute` lies in `[start, end)`, wrapping midnight when `start > end` (`22:00`–`07:00`).
pub fn in_quiet_hours(minute: u16, (start, end): (u16, u16)) -> bool {
    if start <= end { (start..end).contains(&minute) } else { minute >= start || minute < end }
}

/// Decides for a triggered candidate. `last_alert` is when this installation was last alerted for the same
/// target and signal.
pub fn decide(
    fact: &Fact,
    preference: &Preference,
    now: Timestamp,
    last_alert: Option<Timestamp>,
) -> Decision {
    use Suppression::*;
    if !preference.installation_active {
        return Decision::Suppress(InstallationInactive);
    }
    if !preference.enabled {
        return Decision::Suppress(PreferenceOff);
    }
    let (weekday, minute) = seoul_weekday_and_minute(now);
    if !preference.weekdays.is_empty() && !preference.weekdays.contains(&weekday) {
        return Decision::Suppress(QuietHours);
    }
    if preference.quiet_hours.is_some_and(|window| in_quiet_hours(minute, window)) {
        return Decision::Suppress(QuietHours);
    }
    if fact.kind == FactKind::LotAvailability && fact.current_value.is_none() {
        return Decision::Suppress(NoActionableNumber);
    }
    if let Some(limit) = freshness_limit_seconds(fact.kind) {
        let fresh = fact.observed_at.is_some_and(|observed| observed.seconds_until(now) <= limit);
        if !fresh {
            return Decision::Suppress(SourceStale);
        }
    }
    if last_alert.is_some_and(|last| last.seconds_until(now) < COOL_DOWN_SECONDS) {
        return Decision::Suppress(CoolDown);
    }
    Decision::PushNow
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Saturday 2026-06-13 15:30 in Seoul.
    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_781_332_200).unwrap()
    }

    fn lot_fact(before: i64, after: Option<i64>, age: i64) -> Fact {
        Fact {
            lot_id: Some("yeouido-2".into()),
            observed_at: Some(Timestamp::from_unix_seconds(now().as_unix_seconds() - age).unwrap()),
            previous_value: Some(before),
            current_value: after,
            ..Fact::new("lot:yeouido-2:1".into(), FactKind::LotAvailability, "yeouido".into())
        }
    }

    fn below(threshold: i64) -> Preference {
        Preference {
            installation_id: "i1".into(),
            position: 0,
            target_kind: TargetKind::Lot,
            target_id: "yeouido-2".into(),
            signal: SignalType::LotAvailableBelow,
            threshold: Some(threshold),
            weekdays: vec![],
            enabled: true,
            installation_active: true,
            quiet_hours: None,
            app_release: Some(contracts::app_release::AppRelease::new(2, 3, 0)),
            lang: contracts::v2::Lang::Ko,
        }
    }

    #[test]
    fn thresholds_trigger_on_crossing_only() {
        assert!(triggers(&lot_fact(60, Some(40), 30), &below(50)));
        assert!(!triggers(&lot_fact(45, Some(40), 30), &below(50)), "already below");
        assert!(!triggers(&lot_fact(60, Some(55), 30), &below(50)), "still above");
        let above = Preference { signal: SignalType::LotAvailableAbove, ..below(50) };
        assert!(triggers(&lot_fact(40, Some(60), 30), &above));
        let full = Preference { signal: SignalType::LotFull, threshold: None, ..below(0) };
        assert!(triggers(&lot_fact(3, Some(0), 30), &full));
        assert!(!triggers(&lot_fact(0, Some(0), 30), &full));
        let other_lot = Preference { target_id: "yeouido-1".into(), ..below(50) };
        assert!(!triggers(&lot_fact(60, Some(40), 30), &other_lot));
    }

    #[test]
    fn congestion_direction_matters() {
        let fact = Fact {
            kind: FactKind::CongestionLevel,
            lot_id: None,
            previous_level: Some(CongestionLevel::Crowded),
            current_level: Some(CongestionLevel::Normal),
            ..lot_fact(0, None, 60)
        };
        let eased = Preference {
            target_kind: TargetKind::Park,
            target_id: "yeouido".into(),
            signal: SignalType::CongestionEased,
            threshold: None,
            ..below(0)
        };
        let rose = Preference { signal: SignalType::CongestionRose, ..eased.clone() };
        assert!(triggers(&fact, &eased));
        assert!(!triggers(&fact, &rose));
    }

    #[test]
    fn each_suppression_reason() {
        let fact = lot_fact(60, Some(40), 30);
        assert_eq!(decide(&fact, &below(50), now(), None), Decision::PushNow);
        let inactive = Preference { installation_active: false, ..below(50) };
        assert_eq!(
            decide(&fact, &inactive, now(), None),
            Decision::Suppress(Suppression::InstallationInactive)
        );
        let off = Preference { enabled: false, ..below(50) };
        assert_eq!(
            decide(&fact, &off, now(), None),
            Decision::Suppress(Suppression::PreferenceOff)
        );
        let weekdays_only = Preference { weekdays: vec![Weekday::Mon, Weekday::Tue], ..below(50) };
        assert_eq!(
            decide(&fact, &weekdays_only, now(), None),
            Decision::Suppress(Suppression::QuietHours)
        );
        let quiet = Preference { quiet_hours: Some((15 * 60, 16 * 60)), ..below(50) };
        assert_eq!(decide(&fact, &quiet, now(), None), Decision::Suppress(Suppression::QuietHours));
        let no_number = lot_fact(60, None, 30);
        assert_eq!(
            decide(&no_number, &below(50), now(), None),
            Decision::Suppress(Suppression::NoActionableNumber)
        );
        let stale = lot_fact(60, Some(40), 11 * 60);
        assert_eq!(
            decide(&stale, &below(50), now(), None),
            Decision::Suppress(Suppression::SourceStale)
        );
        let recent = Timestamp::from_unix_seconds(now().as_unix_seconds() - 10 * 60).unwrap();
        assert_eq!(
            decide(&fact, &below(50), now(), Some(recent)),
            Decision::Suppress(Suppression::CoolDown)
        );
        let long_ago = Timestamp::from_unix_seconds(now().as_unix_seconds() - 31 * 60).unwrap();
        assert_eq!(decide(&fact, &below(50), now(), Some(long_ago)), Decision::PushNow);
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let night = (22 * 60, 7 * 60);
        assert!(in_quiet_hours(23 * 60, night));
        assert!(in_quiet_hours(3 * 60, night));
        assert!(!in_quiet_hours(7 * 60, night));
        assert!(!in_quiet_hours(12 * 60, night));
        assert!(in_quiet_hours(12 * 60, (12 * 60, 13 * 60)));
    }
}
