//! Validation of installation and preference requests: every rule names the field it guards, so the app
//! (and whoever debugs it) sees exactly what to fix.

use std::collections::BTreeSet;

use contracts::v2::{InstallationRequest, PreferencesRequest, SignalType, TargetKind};
use readmodel::Snapshot;

use crate::error::ApiError;

/// Most subscriptions one installation may hold.
pub const MAX_SUBSCRIPTIONS: usize = 50;
/// Thresholds are parking spaces; the largest lot has about 1,100.
pub const MAX_THRESHOLD: u32 = 5_000;

/// An APNs device token: hexadecimal, 64 characters, or up to 200 for the longer tokens Apple may issue
/// (Apple documents tokens as variable-length opaque data).
pub fn apns_token(token: &str) -> Result<(), ApiError> {
    let valid = (64..=200).contains(&token.len())
        && token.len().is_multiple_of(2)
        && token.bytes().all(|b| b.is_ascii_hexdigit());
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "apns_token",
            "expected 64 to 200 hexadecimal characters (an even count)",
        ))
    }
}

/// A BCP 47 locale as iOS reports it: language, optional script, optional region (`ko-KR`, `zh-Hans-CN`).
pub fn locale(locale: &str) -> Result<(), ApiError> {
    let mut subtags = locale.split(['-', '_']);
    let language_ok = subtags
        .next()
        .is_some_and(|s| (2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    let mut rest_ok = true;
    let mut seen = 0;
    for subtag in subtags {
        seen += 1;
        let script = subtag.len() == 4 && subtag.bytes().all(|b| b.is_ascii_alphabetic());
        let region = (subtag.len() == 2 && subtag.bytes().all(|b| b.is_ascii_alphabetic()))
            || (subtag.len() == 3 && subtag.bytes().all(|b| b.is_ascii_digit()));
        rest_ok &= script || region;
    }
    if language_ok && rest_ok && seen <= 2 {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "locale",
            "expected a BCP 47 locale such as ko-KR, en or zh-Hans-CN",
        ))
    }
}

/// `MAJOR.MINOR[.PATCH]`, optionally followed by ` (BUILD)`.
pub fn app_version(version: &str) -> Result<(), ApiError> {
    let (number, build) = match version.split_once(" (") {
        Some((number, build)) => (number, Some(build)),
        None => (version, None),
    };
    let parts: Vec<&str> = number.split('.').collect();
    let numbers_ok = (2..=3).contains(&parts.len())
        && parts.iter().all(|part| {
            !part.is_empty() && part.len() <= 6 && part.bytes().all(|b| b.is_ascii_digit())
        });
    let build_ok = build.is_none_or(|build| {
        build.strip_suffix(')').is_some_and(|b| {
            !b.is_empty() && b.len() <= 12 && b.bytes().all(|c| c.is_ascii_digit())
        })
    });
    if numbers_ok && build_ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "app_version",
            "expected MAJOR.MINOR[.PATCH] optionally followed by ` (BUILD)`",
        ))
    }
}

pub fn installation(request: &InstallationRequest) -> Result<(), ApiError> {
    apns_token(&request.apns_token)?;
    locale(&request.locale)?;
    app_version(&request.app_version)
}

fn minutes(field: &str, hh_mm: &str) -> Result<u16, ApiError> {
    let parsed = hh_mm.split_once(':').and_then(|(h, m)| {
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (hh_mm.len() == 5 && h < 24 && m < 60).then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| ApiError::bad_request(field, "expected HH:MM in 24-hour Asia/Seoul time"))
}

/// Checks preferences against the contract and the reference data in `snapshot`.
pub fn preferences(request: &PreferencesRequest, snapshot: &Snapshot) -> Result<(), ApiError> {
    if let Some(quiet) = &request.quiet_hours {
        let start = minutes("quiet_hours.start", &quiet.start)?;
        let end = minutes("quiet_hours.end", &quiet.end)?;
        if start == end {
            return Err(ApiError::bad_request(
                "quiet_hours",
                "start and end are equal; omit quiet_hours instead",
            ));
        }
    }
    if request.subscriptions.len() > MAX_SUBSCRIPTIONS {
        return Err(ApiError::bad_request(
            "subscriptions",
            format!("at most {MAX_SUBSCRIPTIONS} subscriptions"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, subscription) in request.subscriptions.iter().enumerate() {
        let field = |name: &str| format!("subscriptions[{i}].{name}");
        let wants_lot = match subscription.signal {
            SignalType::LotAvailableBelow | SignalType::LotAvailableAbove | SignalType::LotFull => {
                true
            }
            SignalType::CongestionEased
            | SignalType::CongestionRose
            | SignalType::EventCancelled
            | SignalType::EventReinstated
            | SignalType::ParkClosed => false,
            SignalType::Unknown => {
                return Err(ApiError::bad_request(field("signal"), "unknown signal type"));
            }
        };
        let target_ok = match subscription.target_kind {
            TargetKind::Lot => wants_lot && snapshot.lot(&subscription.target_id).is_some(),
            TargetKind::Park => !wants_lot && snapshot.park(&subscription.target_id).is_some(),
        };
        if !target_ok {
            let expected = if wants_lot { "a lot_id" } else { "a park_id" };
            return Err(ApiError::bad_request(
                field("target_id"),
                format!(
                    "`{}` is not {expected} from /v2/parks for this signal",
                    subscription.target_id
                ),
            ));
        }
        let needs_threshold = matches!(
            subscription.signal,
            SignalType::LotAvailableBelow | SignalType::LotAvailableAbove
        );
        match (needs_threshold, subscription.threshold) {
            (true, None) => {
                return Err(ApiError::bad_request(field("threshold"), "required for this signal"));
            }
            (true, Some(threshold)) if threshold > MAX_THRESHOLD => {
                return Err(ApiError::bad_request(
                    field("threshold"),
                    format!("at most {MAX_THRESHOLD} spaces"),
                ));
            }
            (false, Some(_)) => {
                return Err(ApiError::bad_request(
                    field("threshold"),
                    "must be absent for this signal",
                ));
            }
            _ => {}
        }
        let weekdays: BTreeSet<_> = subscription.weekdays.iter().collect();
        if weekdays.len() != subscription.weekdays.len() {
            return Err(ApiError::bad_request(field("weekdays"), "lists a day twice"));
        }
        if !seen.insert((
            subscription.target_id.clone(),
            subscription.signal,
            subscription.threshold,
        )) {
            return Err(ApiError::bad_request(
                format!("subscriptions[{i}]"),
                "duplicates an earlier subscription",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apns_tokens() {
        assert!(apns_token(&"a".repeat(64)).is_ok());
        assert!(apns_token(&"0F".repeat(50)).is_ok());
        assert!(apns_token(&"a".repeat(63)).is_err());
        assert!(apns_token(&"g".repeat(64)).is_err());
        assert!(apns_token(&"a".repeat(202)).is_err());
    }

    #[test]
    fn locales() {
        for ok in ["ko", "ko-KR", "en_US", "zh-Hans-CN", "es-419"] {
            assert!(locale(ok).is_ok(), "{ok}");
        }
        for bad in ["", "k", "korean", "ko-KR-x", "ko-", "12"] {
            assert!(locale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn app_versions() {
        for ok in ["2.3", "2.3.0", "2.3.0 (412)"] {
            assert!(app_version(ok).is_ok(), "{ok}");
        }
        for bad in ["2", "v2.3", "2.3.0.1", "2.3 (abc)", "2.3 (412"] {
            assert!(app_version(bad).is_err(), "{bad}");
        }
    }
}
