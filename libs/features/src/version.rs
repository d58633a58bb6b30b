//! `DottedNumber`: an app version or build as Apple writes them (`2.4.0`, `431`, `431.2`), parsed strictly.
//!
//! It lives here rather than in the api so that the features file's build ranges are read by the same parser
//! as the builds the app sends (`services/api/src/app_version.rs` re-exports it), and `cargo xtask manifests`
//! can check the file without depending on a service.

use std::fmt;

/// Up to three period-separated integers, as Apple allows for `CFBundleShortVersionString` and
/// `CFBundleVersion`. Leading zeros are refused so one version has one spelling (and one metric label).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DottedNumber(Vec<u32>);

impl DottedNumber {
    pub fn parse(text: &str) -> Option<DottedNumber> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() > 3 {
            return None;
        }
        let numbers = parts.into_iter().map(|part| {
            let canonical = !part.is_empty()
                && part.len() <= 9
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'));
            canonical.then(|| part.parse().ok()).flatten()
        });
        numbers.collect::<Option<Vec<u32>>>().map(DottedNumber)
    }
}

impl fmt::Display for DottedNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// In the features file a build or version is a string (`"431"`, `"2.4.0"`): TOML numbers cannot spell
/// `431.2.1`, and one form for both keeps the file uniform.
impl<'de> serde::Deserialize<'de> for DottedNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DottedNumber::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a version or build (up to three period-separated numbers without leading zeros)"
            ))
        })
    }
}
