//! Retiring an API version on evidence: the schedule the deploy configuration gives (`API_RETIREMENT`, from
//! the overlay's ConfigMap), the headers it puts on every response of a scheduled version, and the rule by
//! which the compatibility gate lets a released version stop being served.
//!
//! The schedule is one line so it fits a ConfigMap value and an environment variable: entries separated by
//! `;`, each a version followed by `key=value` fields:
//!
//! ```text
//! v1 deprecation=2026-12-01T00:00:00Z sunset=2027-03-31T15:00:00Z link=https://hangangjari.app/docs/api/v1
//! ```
//!
//! The api and `cargo xtask contracts` read it with this one parser, so the headers old apps see and the date
//! the gate checks cannot disagree.

use std::fmt;

use jiff::{Timestamp, tz::TimeZone};

/// How far back the gate looks at recorded usage.
pub const USAGE_WINDOW_DAYS: i64 = 14;

/// One API version scheduled for retirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retirement {
    /// `v1`, as in the path and `contracts/released/api/<version>`.
    pub version: String,
    /// Since when the version is deprecated (RFC 9745 `Deprecation`).
    pub deprecation: Timestamp,
    /// When it stops being served (RFC 8594 `Sunset`).
    pub sunset: Timestamp,
    /// The page explaining the retirement and what to do (`Link: <…>; rel="sunset"`); https only.
    pub link: String,
}

impl Retirement {
    /// The `Deprecation` header value: RFC 9745's structured date, `@<unix seconds>`.
    pub fn deprecation_header(&self) -> String {
        format!("@{}", self.deprecation.as_second())
    }

    /// The `Sunset` header value: RFC 8594's HTTP-date (IMF-fixdate, always GMT).
    pub fn sunset_header(&self) -> String {
        self.sunset.to_zoned(TimeZone::UTC).strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
    }

    /// The `Link` header value pointing at the retirement's documentation.
    pub fn link_header(&self) -> String {
        format!("<{}>; rel=\"sunset\"", self.link)
    }
}

/// Every scheduled retirement; empty when nothing is being retired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule(Vec<Retirement>);

/// Why a schedule was refused; names the entry and the field, since the value comes from a ConfigMap a person
/// edited.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("`{0}` is not an API version (expected v<number>)")]
    BadVersion(String),
    #[error("{version}: `{field}` is missing")]
    MissingField { version: String, field: &'static str },
    #[error("{version}: unknown field `{field}` (expected deprecation, sunset, link)")]
    UnknownField { version: String, field: String },
    #[error("{version}: `{field}` is not an RFC 3339 instant: {value}")]
    BadTime { version: String, field: &'static str, value: String },
    #[error("{version}: the link must be an https URL: {value}")]
    BadLink { version: String, value: String },
    #[error("{version}: the sunset is before the deprecation")]
    SunsetBeforeDeprecation { version: String },
    #[error("{0} is scheduled twice")]
    Duplicate(String),
}

impl Schedule {
    /// Parses the one-line schedule; blank means nothing scheduled.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let mut entries: Vec<Retirement> = Vec::new();
        for entry in text.split(';').map(str::trim).filter(|entry| !entry.is_empty()) {
            let retirement = parse_entry(entry)?;
            if entries.iter().any(|known| known.version == retirement.version) {
                return Err(ScheduleError::Duplicate(retirement.version));
            }
            entries.push(retirement);
        }
        Ok(Schedule(entries))
    }

    /// The retirement of `version`, when one is scheduled.
    pub fn get(&self, version: &str) -> Option<&Retirement> {
        self.0.iter().find(|retirement| retirement.version == version)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Retirement> {
        self.0.iter()
    }
}

fn parse_entry(entry: &str) -> Result<Retirement, ScheduleError> {
    let mut words = entry.split_whitespace();
    let version = words.next().unwrap_or_default().to_owned();
    let well_formed = version
        .strip_prefix('v')
        .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(ScheduleError::BadVersion(version));
    }
    let (mut deprecation, mut sunset, mut link) = (None, None, None);
    for word in words {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        match key {
            "deprecation" => deprecation = Some(parse_time(&version, "deprecation", value)?),
            "sunset" => sunset = Some(parse_time(&version, "sunset", value)?),
            // The value goes into a header between angle brackets: no spaces, quotes or brackets.
            "link"
                if value.starts_with("https://")
                    && value.len() > "https://".len()
                    && !value.bytes().any(|b| b.is_ascii_control() || b"<>\"".contains(&b)) =>
            {
                link = Some(value.to_owned());
            }
            "link" => return Err(ScheduleError::BadLink { version, value: value.to_owned() }),
            _ => return Err(ScheduleError::UnknownField { version, field: key.to_owned() }),
        }
    }
    let missing = |field| ScheduleError::MissingField { version: version.clone(), field };
    let deprecation = deprecation.ok_or_else(|| missing("deprecation"))?;
    let sunset = sunset.ok_or_else(|| missing("sunset"))?;
    let link = link.ok_or_else(|| missing("link"))?;
    if sunset < deprecation {
        return Err(ScheduleError::SunsetBeforeDeprecation { version });
    }
    Ok(Retirement { version, deprecation, sunset, link })
}

fn parse_time(version: &str, field: &'static str, value: &str) -> Result<Timestamp, ScheduleError> {
    value.parse().map_err(|_| ScheduleError::BadTime {
        version: version.to_owned(),
        field,
        value: value.to_owned(),
    })
}

/// Why the gate refuses to let a released version stop being served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RetirementRefused {
    #[error("{version} has no sunset date in API_RETIREMENT; schedule its retirement first")]
    NotScheduled { version: String },
    #[error("{version}'s sunset ({sunset}) has not passed yet")]
    SunsetNotPassed { version: String, sunset: Timestamp },
    #[error(
        "{version}: no usage record to judge by (set DATABASE_URL to the production database holding \
         ops.api_usage_day)"
    )]
    NoUsageRecord { version: String },
    #[error(
        "{version} still had {requests} request(s) in the last {days} days; retiring needs fewer than \
         {threshold} (--retire-below)"
    )]
    StillCalled { version: String, requests: u64, days: i64, threshold: u64 },
}

/// The recorded evidence about a version, as the gate read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// Requests to the version over the last [`USAGE_WINDOW_DAYS`], or `None` when there is no record.
    pub recent_requests: Option<u64>,
    /// Retiring needs fewer requests than this.
    pub threshold: u64,
}

/// Whether `version` may stop being served at `now`: it carries a sunset that has passed and fewer than
/// `threshold` requests over the window. Every condition is needed; an unknown usage refuses.
pub fn judge_retirement(
    version: &str,
    schedule: &Schedule,
    now: Timestamp,
    evidence: Evidence,
) -> Result<(), RetirementRefused> {
    let version = version.to_owned();
    let Some(retirement) = schedule.get(&version) else {
        return Err(RetirementRefused::NotScheduled { version });
    };
    if now < retirement.sunset {
        return Err(RetirementRefused::SunsetNotPassed { version, sunset: retirement.sunset });
    }
    let Some(requests) = evidence.recent_requests else {
        return Err(RetirementRefused::NoUsageRecord { version });
    };
    if requests >= evidence.threshold {
        return Err(RetirementRefused::StillCalled {
            version,
            requests,
            days: USAGE_WINDOW_DAYS,
            threshold: evidence.threshold,
        });
    }
    Ok(())
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                format!(
                    "{} deprecation={} sunset={} link={}",
                    r.version, r.deprecation, r.sunset, r.link
                )
            })
            .collect();
        f.write_str(&entries.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "v1 deprecation=2026-12-01T00:00:00Z sunset=2027-03-31T15:00:00Z \
                      link=https://hangangjari.app/docs/api/v1";

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_schedule_gives_the_three_headers() {
        let schedule = Schedule::parse(V1).unwrap();
        let v1 = schedule.get("v1").unwrap();
        assert_eq!(v1.deprecation_header(), "@1796083200");
        assert_eq!(v1.sunset_header(), "Wed, 31 Mar 2027 15:00:00 GMT");
        assert_eq!(v1.link_header(), "<https://hangangjari.app/docs/api/v1>; rel=\"sunset\"");
        assert!(schedule.get("v2").is_none());
        assert_eq!(Schedule::parse(&schedule.to_string()).unwrap(), schedule);
    }

    #[test]
    fn blank_means_nothing_scheduled() {
        assert_eq!(Schedule::parse("  ").unwrap(), Schedule::default());
    }

    #[test]
    fn bad_schedules_name_what_is_wrong() {
        let cases = [
            ("1 sunset=2027-01-01T00:00:00Z", "`1` is not an API version"),
            ("v1 sunset=2027-01-01T00:00:00Z link=https://x.example", "`deprecation` is missing"),
            (
                "v1 deprecation=2027-01-01 sunset=2027-01-02T00:00:00Z link=https://x.example",
                "RFC 3339",
            ),
            (
                "v1 deprecation=2027-01-01T00:00:00Z sunset=2027-01-02T00:00:00Z link=http://x.example",
                "https",
            ),
            (
                "v1 deprecation=2027-01-02T00:00:00Z sunset=2027-01-01T00:00:00Z link=https://x.example",
                "before",
            ),
            ("v1 deprecated=2027-01-01T00:00:00Z", "unknown field `deprecated`"),
            (&format!("{V1}; {V1}"), "scheduled twice"),
        ];
        for (text, expected) in cases {
            let error = Schedule::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn retiring_is_refused_before_the_sunset_or_with_recent_usage_and_accepted_after_with_none() {
        let schedule = Schedule::parse(V1).unwrap();
        let before = at("2027-03-01T00:00:00Z");
        let after = at("2027-04-15T00:00:00Z");
        let evidence = |requests| Evidence { recent_requests: requests, threshold: 100 };
        let refused = |now, requests| {
            judge_retirement("v1", &schedule, now, evidence(requests)).unwrap_err().to_string()
        };
        assert!(refused(before, Some(0)).contains("has not passed yet"));
        assert_eq!(
            refused(after, Some(5_000)),
            "v1 still had 5000 request(s) in the last 14 days; retiring needs fewer than 100 (--retire-below)"
        );
        assert!(refused(after, Some(100)).contains("still had 100"));
        assert!(refused(after, None).contains("no usage record"));
        assert!(
            judge_retirement("v2", &schedule, after, evidence(Some(0)))
                .unwrap_err()
                .to_string()
                .contains("no sunset date")
        );
        assert_eq!(judge_retirement("v1", &schedule, after, evidence(Some(0))), Ok(()));
        assert_eq!(judge_retirement("v1", &schedule, after, evidence(Some(99))), Ok(()));
    }
}
