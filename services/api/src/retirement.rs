//! `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and `Link: <…>; rel="sunset"` on every response of an API
//! version scheduled for retirement, so old apps (and whoever reads their logs) learn of it from the server.
//!
//! The schedule is deploy configuration (`API_RETIREMENT`, from the overlay's `hangang-config` ConfigMap),
//! parsed by `contracts::retirement`, the same parser the compatibility gate reads it with.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use contracts::retirement::{Schedule, ScheduleError};

use crate::usage::ApiVersion;

/// Which API versions are being retired.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RetirementSettings {
    /// API versions scheduled for retirement, `;`-separated: `v1 deprecation=<RFC 3339> sunset=<RFC 3339>
    /// link=<https URL>`. Their responses carry `Deprecation`, `Sunset` and `Link: rel="sunset"`. Empty:
    /// none.
    #[arg(long, env = "API_RETIREMENT", default_value = "", value_parser = parse_schedule)]
    pub api_retirement: Schedule,
}

fn parse_schedule(text: &str) -> Result<Schedule, ScheduleError> {
    Schedule::parse(text)
}

const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
const SUNSET: HeaderName = HeaderName::from_static("sunset");

/// Adds the retirement headers of `api_version` to a response's `headers`, when it is scheduled.
pub fn add_headers(schedule: &Schedule, api_version: ApiVersion, headers: &mut HeaderMap) {
    let Some(retirement) = schedule.get(api_version.as_str()) else {
        return;
    };
    // The parser admits only digits, dates and an https URL without spaces, quotes or brackets, so every
    // value is a valid header value.
    let values = [
        (DEPRECATION, retirement.deprecation_header()),
        (SUNSET, retirement.sunset_header()),
        (header::LINK, retirement.link_header()),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.append(name, value);
        }
    }
}
