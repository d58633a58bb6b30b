//! An app release's marketing version (`CFBundleShortVersionString`, `2.4.0`): what a push installation
//! reports as its `app_version` (`2.4.0 (431)`) and what `KEYS.md` records as the release that introduced
//! each localization key.

use std::{fmt, str::FromStr};

/// `MAJOR.MINOR[.PATCH]`, ordered as releases are (a missing patch is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppRelease {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// A text that is not a marketing version.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an app version such as 2.4.0 or 2.4.0 (431)")]
pub struct AppReleaseError(String);

impl AppRelease {
    pub const fn new(major: u32, minor: u32, patch: u32) -> AppRelease {
        AppRelease { major, minor, patch }
    }

    /// The marketing version of an installation's `app_version`: `2.4.0 (431)`, `2.4.0` or `2.4`.
    pub fn of_installation(app_version: &str) -> Result<AppRelease, AppReleaseError> {
        let version = app_version.split_once(" (").map_or(app_version, |(version, _)| version);
        version.trim().parse().map_err(|_| AppReleaseError(app_version.to_owned()))
    }
}

impl FromStr for AppRelease {
    type Err = AppReleaseError;

    fn from_str(text: &str) -> Result<AppRelease, AppReleaseError> {
        let error = || AppReleaseError(text.to_owned());
        let parts: Vec<&str> = text.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(error());
        }
        let number = |part: &str| -> Result<u32, AppReleaseError> {
            let canonical = !part.is_empty()
                && part.len() <= 6
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'));
            if canonical { part.parse().map_err(|_| error()) } else { Err(error()) }
        };
        let patch = parts.get(2).map_or(Ok(0), |part| number(part))?;
        Ok(AppRelease { major: number(parts[0])?, minor: number(parts[1])?, patch })
    }
}

impl fmt::Display for AppRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installations_versions_parse_strictly_and_order_as_releases() {
        let parse = AppRelease::of_installation;
        assert_eq!(parse("2.4.0 (431)").unwrap(), AppRelease::new(2, 4, 0));
        assert_eq!(parse("2.4").unwrap(), AppRelease::new(2, 4, 0));
        assert_eq!(parse("10.0.1").unwrap(), AppRelease::new(10, 0, 1));
        for bad in ["", "2", "2.4.0.1", "v2.4", "2.04", "2.4.x (1)", "two"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(AppRelease::new(2, 10, 0) > AppRelease::new(2, 9, 9));
        assert!(AppRelease::new(2, 4, 0) > AppRelease::new(2, 3, 12));
    }
}
