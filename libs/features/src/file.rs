//! The features file, typed: everything in it is checked while it is read, so a [`Features`] value is always
//! one the api can act on, and a file that is not is refused with the line and the reason.
//!
//! ```toml
//! minimum_supported_build = "400"
//! recommended_build = "431"
//!
//! [switches.lot_forecast_card]
//! default = false
//! rules = [
//!   { builds = { from = "431" }, percent = 25, enabled = true },
//! ]
//! ```

use std::{collections::BTreeMap, fmt};

use serde::Deserialize;

use crate::DottedNumber;

/// One environment's switches and its supported builds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "FeaturesFile")]
pub struct Features {
    /// Builds below it should not be used any more: the app asks the user to update. `None`: every build is.
    pub minimum_supported_build: Option<DottedNumber>,
    /// Builds below it are told an update is available. `None`: no recommendation.
    pub recommended_build: Option<DottedNumber>,
    /// Every switch by name, in name order (the order `/v2/config` lists them in).
    pub switches: BTreeMap<SwitchName, Switch>,
}

/// Why a features file was refused. The message names the line (from the TOML reader) and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FeaturesError(#[from] toml::de::Error);

impl Features {
    /// Reads a features file.
    pub fn parse(text: &str) -> Result<Features, FeaturesError> {
        Ok(toml::from_str(text)?)
    }
}

/// The file as written, before the checks that span fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeaturesFile {
    minimum_supported_build: Option<DottedNumber>,
    recommended_build: Option<DottedNumber>,
    #[serde(default)]
    switches: BTreeMap<SwitchName, Switch>,
}

impl TryFrom<FeaturesFile> for Features {
    type Error = String;

    fn try_from(file: FeaturesFile) -> Result<Features, String> {
        if let (Some(minimum), Some(recommended)) =
            (&file.minimum_supported_build, &file.recommended_build)
            && recommended < minimum
        {
            return Err(format!(
                "recommended_build {recommended} is below minimum_supported_build {minimum}"
            ));
        }
        Ok(Features {
            minimum_supported_build: file.minimum_supported_build,
            recommended_build: file.recommended_build,
            switches: file.switches,
        })
    }
}

/// A switch's name: lowercase ASCII letters, digits and `_`, starting with a letter, at most 64 bytes. The app
/// reads it as a JSON key, so it must be one the Swift side can name as a constant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct SwitchName(String);

impl SwitchName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SwitchName {
    type Error = String;

    fn try_from(name: String) -> Result<SwitchName, String> {
        let valid = name.len() <= 64
            && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(SwitchName(name))
        } else {
            Err(format!(
                "switch name `{name}` must be lowercase letters, digits and `_`, start with a letter and be at most 64 bytes"
            ))
        }
    }
}

impl fmt::Display for SwitchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A switch: its value when no rule matches, and rules tried in order, the first matching one deciding.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    pub default: bool,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A rule: every condition it names must hold for it to decide the switch.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RuleFile")]
pub struct Rule {
    /// The calling build (`CFBundleVersion`) is in this range; a caller whose build is unknown never matches.
    pub builds: Option<Range>,
    /// The marketing version (`CFBundleShortVersionString`) is in this range; only `X-App-Version` carries
    /// it, so a caller known by its `User-Agent` alone never matches.
    pub versions: Option<Range>,
    /// The installation is among this share of installations; a request without an installation id never
    /// matches.
    pub percent: Option<Percent>,
    /// The switch's value when the rule matches.
    pub enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    builds: Option<Range>,
    versions: Option<Range>,
    percent: Option<Percent>,
    enabled: bool,
}

impl TryFrom<RuleFile> for Rule {
    type Error = String;

    fn try_from(rule: RuleFile) -> Result<Rule, String> {
        // A rule without conditions would silently replace the switch's default and hide every later rule.
        if rule.builds.is_none() && rule.versions.is_none() && rule.percent.is_none() {
            return Err("a rule needs at least one of builds, versions or percent; \
                        set the switch's default instead"
                .to_owned());
        }
        Ok(Rule {
            builds: rule.builds,
            versions: rule.versions,
            percent: rule.percent,
            enabled: rule.enabled,
        })
    }
}

/// A half-open range of builds or versions: `from` included, `before` excluded, at least one of them, and
/// `from` below `before` (an empty range would be a rule that never applies).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RangeFile")]
pub struct Range {
    pub from: Option<DottedNumber>,
    pub before: Option<DottedNumber>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeFile {
    from: Option<DottedNumber>,
    before: Option<DottedNumber>,
}

impl TryFrom<RangeFile> for Range {
    type Error = String;

    fn try_from(range: RangeFile) -> Result<Range, String> {
        match (&range.from, &range.before) {
            (None, None) => return Err("a range needs `from`, `before` or both".to_owned()),
            (Some(from), Some(before)) if from >= before => {
                return Err(format!("the range from {from} before {before} is empty"));
            }
            _ => {}
        }
        Ok(Range { from: range.from, before: range.before })
    }
}

impl Range {
    pub fn contains(&self, value: &DottedNumber) -> bool {
        self.from.as_ref().is_none_or(|from| from <= value)
            && self.before.as_ref().is_none_or(|before| value < before)
    }
}

/// A share of installations, 0 to 100 percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Percent(u8);

impl Percent {
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Percent {
    type Error = String;

    fn try_from(value: i64) -> Result<Percent, String> {
        match u8::try_from(value) {
            Ok(percent) if percent <= 100 => Ok(Percent(percent)),
            _ => Err(format!("percent {value} is outside 0–100")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        Features::parse(text).expect_err("the file must be refused").to_string()
    }

    #[test]
    fn a_full_file_reads_into_typed_rules() {
        let features = Features::parse(
            r#"
            minimum_supported_build = "400"
            recommended_build = "431"

            [switches.lot_forecast_card]
            default = false
            rules = [
              { builds = { from = "431", before = "500" }, versions = { from = "2.4" }, percent = 25, enabled = true },
            ]

            [switches.legacy_banner]
            default = true
            "#,
        )
        .unwrap();
        assert_eq!(features.minimum_supported_build, DottedNumber::parse("400"));
        assert_eq!(features.recommended_build, DottedNumber::parse("431"));
        let names: Vec<&str> = features.switches.keys().map(SwitchName::as_str).collect();
        assert_eq!(names, ["legacy_banner", "lot_forecast_card"]);
        let rule = &features.switches.values().nth(1).unwrap().rules[0];
        assert_eq!(rule.percent.map(Percent::get), Some(25));
        assert_eq!(rule.builds.as_ref().unwrap().before, DottedNumber::parse("500"));
        assert!(rule.enabled);
        assert_eq!(Features::parse("").unwrap(), Features::default());
    }

    #[test]
    fn mistakes_are_refused_with_their_reason() {
        let table: &[(&str, &str)] = &[
            ("minimum_build = \"400\"", "unknown field `minimum_build`"),
            ("[switches.a]\ndefault = true\nenabled = true", "unknown field `enabled`"),
            (
                "[switches.a]\ndefault = true\nrules = [{ build = { from = \"1\" }, enabled = true }]",
                "unknown field `build`",
            ),
            (
                "[switches.a]\ndefault = true\nrules = [{ builds = { from = \"1\", to = \"2\" }, enabled = true }]",
                "unknown field `to`",
            ),
            ("[switches.a]\nrules = []", "missing field `default`"),
            ("[switches.Lot]\ndefault = true", "switch name `Lot`"),
            (
                "[switches.a]\ndefault = true\nrules = [{ percent = 101, enabled = true }]",
                "percent 101 is outside 0–100",
            ),
            (
                "[switches.a]\ndefault = true\nrules = [{ percent = -1, enabled = true }]",
                "percent -1 is outside 0–100",
            ),
            (
                "[switches.a]\ndefault = true\nrules = [{ builds = { from = \"431\", before = \"431\" }, enabled = true }]",
                "the range from 431 before 431 is empty",
            ),
            (
                "[switches.a]\ndefault = true\nrules = [{ versions = { from = \"3.0\", before = \"2.9\" }, enabled = true }]",
                "the range from 3.0 before 2.9 is empty",
            ),
            (
                "[switches.a]\ndefault = true\nrules = [{ builds = {}, enabled = true }]",
                "a range needs `from`, `before` or both",
            ),
            (
                "[switches.a]\ndefault = true\nrules = [{ enabled = false }]",
                "a rule needs at least one of builds, versions or percent",
            ),
            (
                "[switches.a]\ndefault = true\nrules = [{ builds = { from = \"043\" }, enabled = true }]",
                "`043` is not a version or build",
            ),
            (
                "[switches.a]\ndefault = true\nrules = [{ builds = { from = 431 }, enabled = true }]",
                "expected a string",
            ),
            (
                "minimum_supported_build = \"431\"\nrecommended_build = \"430\"",
                "recommended_build 430 is below minimum_supported_build 431",
            ),
        ];
        for (text, expected) in table {
            let message = refusal(text);
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn ranges_include_from_and_exclude_before() {
        let range = Range { from: DottedNumber::parse("431"), before: DottedNumber::parse("440") };
        let contains = |build| range.contains(&DottedNumber::parse(build).unwrap());
        assert!(!contains("430"));
        assert!(contains("431"));
        assert!(contains("431.9"));
        assert!(contains("439.1"));
        assert!(!contains("440"));
        assert!(!contains("441"));
    }
}
