//! `Timestamp`: an instant that always travels as RFC 3339 UTC with whole seconds (`2026-06-14T08:20:00Z`).
//!
//! Swift's default `.iso8601` date decoding strategy rejects fractional seconds and offsets other than `Z`
//! are easy to get wrong in widgets, so the serializer enforces one format and the constructor drops
//! sub-second precision up front: a value that compares equal also serializes equal.

use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The only timestamp shape on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(jiff::Timestamp);

/// Why a string is not a wire timestamp.
#[derive(Debug, thiserror::Error)]
#[error("expected an RFC 3339 timestamp such as 2026-06-14T08:20:00Z: {0}")]
pub struct TimestampParseError(#[from] jiff::Error);

impl Timestamp {
    /// The regular expression every serialized timestamp matches; also published in the JSON Schema.
    pub const PATTERN: &'static str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$";

    /// Truncates to whole seconds, the precision the wire carries.
    pub fn from_jiff(instant: jiff::Timestamp) -> Self {
        // `as_second` truncates towards zero; flooring instead keeps pre-1970 instants ordered like the rest.
        let mut seconds = instant.as_second();
        if instant.subsec_nanosecond() < 0 {
            seconds -= 1;
        }
        Self(jiff::Timestamp::from_second(seconds).expect("whole seconds of a valid timestamp"))
    }

    /// The current instant, truncated to whole seconds.
    pub fn now() -> Self {
        Self::from_jiff(jiff::Timestamp::now())
    }

    /// Seconds since the Unix epoch.
    pub fn from_unix_seconds(seconds: i64) -> Result<Self, TimestampParseError> {
        Ok(Self(jiff::Timestamp::from_second(seconds)?))
    }

    pub fn as_unix_seconds(self) -> i64 {
        self.0.as_second()
    }

    pub fn as_jiff(self) -> jiff::Timestamp {
        self.0
    }

    /// Whole seconds elapsed from `self` to `later` (negative when `later` is earlier).
    pub fn seconds_until(self, later: Timestamp) -> i64 {
        later.as_unix_seconds() - self.as_unix_seconds()
    }
}

impl From<jiff::Timestamp> for Timestamp {
    fn from(instant: jiff::Timestamp) -> Self {
        Self::from_jiff(instant)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampParseError;

    /// Accepts any RFC 3339 instant (other offsets, fractions) and normalises it, so a request from a client
    /// that sends `+09:00` still works; what we send back is always the canonical form.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self::from_jiff(text.parse::<jiff::Timestamp>()?))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // jiff prints a UTC timestamp without fractional digits when the subsecond part is zero, which the
        // constructor guarantees.
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "pattern": Self::PATTERN,
            "description": "RFC 3339 UTC instant with whole seconds, e.g. 2026-06-14T08:20:00Z",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_whole_seconds_in_utc() {
        let instant: jiff::Timestamp = "2026-06-14T17:20:00.987654+09:00".parse().unwrap();
        let wire = serde_json::to_string(&Timestamp::from_jiff(instant)).unwrap();
        assert_eq!(wire, r#""2026-06-14T08:20:00Z""#);
    }

    #[test]
    fn parses_other_offsets_and_normalises_them() {
        let parsed: Timestamp = serde_json::from_str(r#""2026-06-14T17:20:00.5+09:00""#).unwrap();
        assert_eq!(parsed.to_string(), "2026-06-14T08:20:00Z");
    }

    #[test]
    fn rejects_text_that_is_not_a_timestamp() {
        let error = serde_json::from_str::<Timestamp>(r#""yesterday""#).unwrap_err();
        assert!(error.to_string().contains("RFC 3339"), "{error}");
    }

    #[test]
    fn truncates_before_the_epoch_consistently() {
        let instant = jiff::Timestamp::from_millisecond(-1_500).unwrap();
        assert_eq!(Timestamp::from_jiff(instant).to_string(), "1969-12-31T23:59:58Z");
    }
}
