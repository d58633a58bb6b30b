//! Which app build is calling: `X-App-Version: 2.4.0 (431)`, else Apple's default `User-Agent`
//! (`Hangangjari/431 CFNetwork/1494.0.7 Darwin/23.4.0`), parsed once and strictly into an [`AppVersion`].
//!
//! A request is never refused for these headers: a value that does not parse is counted as `invalid`, and a
//! request without either (curl, a browser, a monitor) as `unknown`.

use std::fmt;

use axum::http::HeaderMap;
/// Builds and versions are parsed by the features file's rules, so a build range there and a build sent here
/// mean the same numbers.
pub use features::DottedNumber;

/// The header the app sends with its marketing version and build: `X-App-Version: 2.4.0 (431)`.
pub const APP_VERSION_HEADER: &str = "x-app-version";

/// The app's bundle name, the first product of the `User-Agent` iOS writes for URLSession
/// (`<CFBundleName>/<CFBundleVersion> CFNetwork/<version> Darwin/<version>`). Extensions (the widgets) have
/// their own bundle names, which start with it.
const BUNDLE_NAME: &str = "Hangangjari";

/// A calling build: its build number, and its marketing version when `X-App-Version` gave one (the
/// `User-Agent` carries only the build).
///
/// Ordered by build first: builds only ever increase on the App Store, so the greatest is the most recent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppVersion {
    pub build: DottedNumber,
    pub version: Option<DottedNumber>,
}

impl fmt::Display for AppVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{version} ({})", self.build),
            None => write!(f, "build {}", self.build),
        }
    }
}

impl AppVersion {
    /// `2.4.0 (431)`: the marketing version, one space, the build in parentheses.
    pub fn parse_header(text: &str) -> Option<AppVersion> {
        let (version, rest) = text.split_once(" (")?;
        let build = rest.strip_suffix(')')?;
        Some(AppVersion {
            build: DottedNumber::parse(build)?,
            version: Some(DottedNumber::parse(version)?),
        })
    }

    /// `Hangangjari/431 CFNetwork/1494.0.7 Darwin/23.4.0`: exactly these three products, single spaces.
    /// `None` for anything else, including another app's or a browser's agent (see [`Caller::identify`]).
    pub fn parse_user_agent(text: &str) -> Option<AppVersion> {
        let mut products = text.split(' ');
        let (name, build) = products.next()?.split_once('/')?;
        if !is_bundle_name(name) {
            return None;
        }
        let build = DottedNumber::parse(build)?;
        for expected in ["CFNetwork", "Darwin"] {
            let (product, version) = products.next()?.split_once('/')?;
            let dotted = !version.is_empty()
                && version
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if product != expected || !dotted {
                return None;
            }
        }
        if products.next().is_some() {
            return None;
        }
        Some(AppVersion { build, version: None })
    }
}

fn is_bundle_name(name: &str) -> bool {
    name.strip_prefix(BUNDLE_NAME)
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Who sent a request, as far as its headers say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    App(AppVersion),
    /// An `X-App-Version`, or a `User-Agent` naming our app, that does not parse.
    Invalid,
    /// Neither header says it is our app.
    Unknown,
}

impl Caller {
    /// `X-App-Version` when present (it carries the marketing version too), else the `User-Agent`.
    pub fn identify(headers: &HeaderMap) -> Caller {
        if let Some(value) = headers.get(APP_VERSION_HEADER) {
            return match value.to_str().ok().and_then(AppVersion::parse_header) {
                Some(version) => Caller::App(version),
                None => Caller::Invalid,
            };
        }
        let Some(agent) = headers.get(axum::http::header::USER_AGENT) else {
            return Caller::Unknown;
        };
        let Ok(agent) = agent.to_str() else {
            return Caller::Unknown;
        };
        let ours = agent.split_once('/').is_some_and(|(name, _)| is_bundle_name(name));
        match AppVersion::parse_user_agent(agent) {
            Some(version) => Caller::App(version),
            None if ours => Caller::Invalid,
            None => Caller::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn caller(app_version: Option<&str>, user_agent: Option<&str>) -> String {
        let mut headers = HeaderMap::new();
        if let Some(value) = app_version {
            headers.insert(APP_VERSION_HEADER, HeaderValue::from_str(value).unwrap());
        }
        if let Some(value) = user_agent {
            headers.insert(axum::http::header::USER_AGENT, HeaderValue::from_str(value).unwrap());
        }
        match Caller::identify(&headers) {
            Caller::App(version) => version.to_string(),
            Caller::Invalid => "invalid".to_owned(),
            Caller::Unknown => "unknown".to_owned(),
        }
    }

    const IOS: &str = "Hangangjari/431 CFNetwork/1494.0.7 Darwin/23.4.0";

    #[test]
    fn headers_become_a_build_or_invalid_or_unknown() {
        let table: &[(Option<&str>, Option<&str>, &str)] = &[
            (Some("2.4.0 (431)"), None, "2.4.0 (431)"),
            (Some("2.4 (431)"), None, "2.4 (431)"),
            (Some("2.4.0 (431.2)"), None, "2.4.0 (431.2)"),
            // The header wins over the agent: it also names the marketing version.
            (
                Some("2.4.0 (431)"),
                Some("Hangangjari/430 CFNetwork/1494.0.7 Darwin/23.4.0"),
                "2.4.0 (431)",
            ),
            (None, Some(IOS), "build 431"),
            (None, Some("HangangjariWidgets/431 CFNetwork/1494.0.7 Darwin/23.4.0"), "build 431"),
            (
                None,
                Some("Hangangjari/431.1.2 CFNetwork/3826.500.131 Darwin/24.5.0"),
                "build 431.1.2",
            ),
            // Present but wrong: counted as invalid, never refused.
            (Some("2.4.0"), None, "invalid"),
            (Some("2.4.0(431)"), None, "invalid"),
            (Some("2.4.0  (431)"), None, "invalid"),
            (Some("2.4.0 (431) "), None, "invalid"),
            (Some("v2.4.0 (431)"), None, "invalid"),
            (Some("2.04.0 (431)"), None, "invalid"),
            (Some("2.4.0.1 (431)"), None, "invalid"),
            (Some("2.4.0 ()"), None, "invalid"),
            (Some("2.4.0 (4294967296)"), None, "invalid"),
            (Some(""), Some(IOS), "invalid"),
            (None, Some("Hangangjari/beta CFNetwork/1494.0.7 Darwin/23.4.0"), "invalid"),
            (None, Some("Hangangjari/431 CFNetwork/1494.0.7"), "invalid"),
            (None, Some("Hangangjari/431 CFNetwork/1494.0.7 Darwin/23.4.0 extra/1"), "invalid"),
            (None, Some("Hangangjari/431  CFNetwork/1494.0.7 Darwin/23.4.0"), "invalid"),
            (None, Some("Hangangjari/431 Darwin/23.4.0 CFNetwork/1494.0.7"), "invalid"),
            (None, Some("Hangangjari/431 CFNetwork/1494..7 Darwin/23.4.0"), "invalid"),
            // Not our app at all.
            (None, None, "unknown"),
            (None, Some("curl/8.5.0"), "unknown"),
            (None, Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"), "unknown"),
            (None, Some("Other/431 CFNetwork/1494.0.7 Darwin/23.4.0"), "unknown"),
        ];
        for (app_version, user_agent, expected) in table {
            assert_eq!(
                caller(*app_version, *user_agent),
                *expected,
                "{app_version:?} {user_agent:?}"
            );
        }
    }

    #[test]
    fn builds_order_before_versions() {
        let older = AppVersion::parse_header("3.0.0 (430)").unwrap();
        let newer = AppVersion::parse_header("2.4.0 (431)").unwrap();
        let newest = AppVersion::parse_header("2.4.0 (431.1)").unwrap();
        assert!(older < newer && newer < newest);
    }
}
