//! A fact: a change ingest observed that push may alert about. One typed value from ingest's store, through
//! ingest's outbox (stored as JSON in this shape), into the `SubmitFacts` request (the proto `Fact`,
//! converted losslessly here) and push's decisions. Kinds and levels are enums end to end; only the gRPC edge
//! spells them as the proto does.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{Timestamp, v2::CongestionLevel};

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// A lot's available spaces changed; `previous_value` and `current_value` carry the counts.
    LotAvailability,
    /// A park's congestion level changed; `previous_level` and `current_level` carry the levels.
    CongestionLevel,
    /// An event was cancelled; `event_id` names it.
    EventCancelled,
    /// An event shown cancelled is listed again; `event_id` names it.
    EventReinstated,
    /// A park was closed by an operator or a reliable notice.
    ParkClosed,
}

impl FactKind {
    /// The stored spelling (`push.fact.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            FactKind::LotAvailability => "lot_availability",
            FactKind::CongestionLevel => "congestion_level",
            FactKind::EventCancelled => "event_cancelled",
            FactKind::EventReinstated => "event_reinstated",
            FactKind::ParkClosed => "park_closed",
        }
    }
}

/// One fact. The idempotency key makes a fact submitted twice stored once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub fact_key: String,
    pub kind: FactKind,
    pub park_id: String,
    #[serde(default)]
    pub lot_id: Option<String>,
    #[serde(default)]
    pub observed_at: Option<Timestamp>,
    #[serde(default)]
    pub fetched_at: Option<Timestamp>,
    #[serde(default)]
    pub previous_value: Option<i64>,
    #[serde(default)]
    pub current_value: Option<i64>,
    #[serde(default)]
    pub previous_level: Option<CongestionLevel>,
    #[serde(default)]
    pub current_level: Option<CongestionLevel>,
    #[serde(default)]
    pub event_id: Option<String>,
    /// Display values for the alert text (`lot_name_ko`, `event_title_ko`, …).
    #[serde(default, deserialize_with = "attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Fact {
    /// A fact of `kind` about `park_id` with every optional part empty.
    pub fn new(fact_key: String, kind: FactKind, park_id: String) -> Fact {
        Fact {
            fact_key,
            kind,
            park_id,
            lot_id: None,
            observed_at: None,
            fetched_at: None,
            previous_value: None,
            current_value: None,
            previous_level: None,
            current_level: None,
            event_id: None,
            attributes: BTreeMap::new(),
        }
    }

    /// The event's title, for cancellation and reinstatement alerts.
    pub fn event_title(&self) -> Option<&str> {
        self.attributes.get("event_title_ko").map(String::as_str)
    }
}

/// Facts queued together for push (one ingest outbox row).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FactBatch {
    pub facts: Vec<Fact>,
}

/// Attribute values as text; rows queued by earlier releases may hold numbers or nulls (a lot's capacity).
fn attributes<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: BTreeMap<String, serde_json::Value> =
        Option::deserialize(deserializer)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|(key, value)| match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some((key, text)),
            other => Some((key, other.to_string())),
        })
        .collect())
}

/// Why a proto fact cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    #[error("fact `{0}`: kind unspecified or unknown")]
    Kind(String),
    #[error("fact `{fact_key}`: `{field}` is not a congestion level: `{value}`")]
    Level { fact_key: String, field: &'static str, value: String },
    #[error("fact `{0}`: a timestamp is out of range")]
    Time(String),
}

#[cfg(feature = "grpc")]
mod proto_conversion {
    use super::*;
    use crate::enums::WireEnum;
    use crate::proto::push::v1 as proto;

    fn proto_time(instant: Timestamp) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds: instant.as_unix_seconds(), nanos: 0 }
    }

    impl From<FactKind> for proto::FactKind {
        fn from(kind: FactKind) -> proto::FactKind {
            match kind {
                FactKind::LotAvailability => proto::FactKind::LotAvailability,
                FactKind::CongestionLevel => proto::FactKind::CongestionLevel,
                FactKind::EventCancelled => proto::FactKind::EventCancelled,
                FactKind::EventReinstated => proto::FactKind::EventReinstated,
                FactKind::ParkClosed => proto::FactKind::ParkClosed,
            }
        }
    }

    impl From<Fact> for proto::Fact {
        fn from(fact: Fact) -> proto::Fact {
            proto::Fact {
                fact_key: fact.fact_key,
                kind: proto::FactKind::from(fact.kind) as i32,
                park_id: fact.park_id,
                lot_id: fact.lot_id,
                observed_at: fact.observed_at.map(proto_time),
                fetched_at: fact.fetched_at.map(proto_time),
                previous_value: fact.previous_value,
                current_value: fact.current_value,
                previous_level: fact.previous_level.map(|level| level.as_str().to_owned()),
                current_level: fact.current_level.map(|level| level.as_str().to_owned()),
                event_id: fact.event_id,
                attributes: fact.attributes.into_iter().collect(),
            }
        }
    }

    impl TryFrom<proto::Fact> for Fact {
        type Error = FactError;

        fn try_from(fact: proto::Fact) -> Result<Fact, FactError> {
            let kind = match proto::FactKind::try_from(fact.kind) {
                Ok(proto::FactKind::LotAvailability) => FactKind::LotAvailability,
                Ok(proto::FactKind::CongestionLevel) => FactKind::CongestionLevel,
                Ok(proto::FactKind::EventCancelled) => FactKind::EventCancelled,
                Ok(proto::FactKind::EventReinstated) => FactKind::EventReinstated,
                Ok(proto::FactKind::ParkClosed) => FactKind::ParkClosed,
                Ok(proto::FactKind::Unspecified) | Err(_) => {
                    return Err(FactError::Kind(fact.fact_key));
                }
            };
            let level = |field: &'static str, value: Option<String>| -> Result<_, FactError> {
                value
                    .map(|value| {
                        CongestionLevel::from_wire(&value).ok_or_else(|| FactError::Level {
                            fact_key: fact.fact_key.clone(),
                            field,
                            value,
                        })
                    })
                    .transpose()
            };
            let time = |instant: Option<prost_types::Timestamp>| -> Result<_, FactError> {
                instant
                    .map(|instant| {
                        Timestamp::from_unix_seconds(instant.seconds)
                            .map_err(|_| FactError::Time(fact.fact_key.clone()))
                    })
                    .transpose()
            };
            Ok(Fact {
                kind,
                previous_level: level("previous_level", fact.previous_level.clone())?,
                current_level: level("current_level", fact.current_level.clone())?,
                observed_at: time(fact.observed_at)?,
                fetched_at: time(fact.fetched_at)?,
                park_id: fact.park_id,
                lot_id: fact.lot_id,
                previous_value: fact.previous_value,
                current_value: fact.current_value,
                event_id: fact.event_id,
                attributes: fact.attributes.into_iter().collect(),
                fact_key: fact.fact_key,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot_fact() -> Fact {
        Fact {
            lot_id: Some("yeouido-2".into()),
            observed_at: Some(Timestamp::from_unix_seconds(1_781_425_200).unwrap()),
            fetched_at: Some(Timestamp::from_unix_seconds(1_781_425_205).unwrap()),
            previous_value: Some(120),
            current_value: Some(3),
            attributes: BTreeMap::from([("lot_name_ko".into(), "여의도2주차장".into())]),
            ..Fact::new(
                "lot:yeouido-2:1781425200".into(),
                FactKind::LotAvailability,
                "yeouido".into(),
            )
        }
    }

    #[test]
    fn an_outbox_row_of_an_earlier_release_reads_as_a_fact() {
        // The JSON ingest queued before facts were typed: absent keys, a number and a null among attributes.
        let row = serde_json::json!({"facts": [{
            "fact_key": "lot:yeouido-2:1781425200", "kind": "lot_availability", "park_id": "yeouido",
            "lot_id": "yeouido-2", "observed_at": "2026-06-14T08:20:00Z", "fetched_at": "2026-06-14T08:20:05Z",
            "previous_value": 120, "current_value": 3,
            "attributes": {"lot_name_ko": "여의도2주차장", "capacity": 1087, "unknown": null}
        }]});
        let batch: FactBatch = serde_json::from_value(row).unwrap();
        let mut expected = lot_fact();
        expected.attributes.insert("capacity".into(), "1087".into());
        assert_eq!(batch.facts, vec![expected]);
        let congestion = serde_json::json!({"fact_key": "c", "kind": "congestion_level", "park_id": "banpo",
            "previous_level": "crowded", "current_level": "slightly_crowded"});
        let fact: Fact = serde_json::from_value(congestion).unwrap();
        assert_eq!(fact.current_level, Some(CongestionLevel::SlightlyCrowded));
    }

    #[test]
    fn a_fact_survives_json_and_proto_unchanged() {
        let fact = lot_fact();
        let json: Fact = serde_json::from_value(serde_json::to_value(&fact).unwrap()).unwrap();
        assert_eq!(json, fact);
        #[cfg(feature = "grpc")]
        {
            let proto = crate::proto::push::v1::Fact::from(fact.clone());
            assert_eq!(Fact::try_from(proto).unwrap(), fact);
            let mut unknown = crate::proto::push::v1::Fact::from(fact.clone());
            unknown.kind = 0;
            assert_eq!(Fact::try_from(unknown), Err(FactError::Kind(fact.fact_key.clone())));
            let mut level = crate::proto::push::v1::Fact::from(fact);
            level.current_level = Some("packed".into());
            assert!(matches!(Fact::try_from(level), Err(FactError::Level { .. })));
        }
    }
}
