//! What ingest queues for its peers, in the shape `ingest.outbox.payload` stores: a forecast refresh, or a
//! batch of facts for push (`contracts::fact`). Written by `store` in the run's transaction, decoded by
//! `dispatch`, turned into the peers' gRPC requests here and nowhere else.

use contracts::{
    Timestamp,
    fact::{FactBatch, FactKind},
    proto::{forecast::v1::RefreshRequest, push::v1::SubmitFactsRequest},
};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};

/// A refresh of the forecasts of what a cycle changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refresh {
    pub lot_ids: Vec<String>,
    pub park_ids: Vec<String>,
    /// The cycle's instant.
    pub as_of: Timestamp,
    /// The run that queued it, for the forecast service's logs and traces.
    pub cycle_id: String,
}

/// One queued message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Refresh(Refresh),
    Facts(FactBatch),
}

/// A stored row that is not a message this build can deliver.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown destination `{0}`")]
    Destination(String),
    #[error("the {destination} payload does not decode: {error}")]
    Payload { destination: &'static str, error: serde_json::Error },
}

impl Message {
    /// `ingest.outbox.destination`.
    pub fn destination(&self) -> &'static str {
        match self {
            Message::Refresh(_) => "forecast",
            Message::Facts(_) => "push",
        }
    }

    /// How long after it is queued the message is still worth delivering. A forecast refresh is superseded by
    /// the next cycle's; lot and congestion facts are about now; a closure or a cancellation stays news for
    /// hours. A batch lives as long as its longest-lived fact (push suppresses lot facts that are too old).
    pub fn deliver_within(&self) -> std::time::Duration {
        const MINUTES: u64 = 60;
        let seconds = match self {
            Message::Refresh(_) => 10 * MINUTES,
            Message::Facts(batch) => batch
                .facts
                .iter()
                .map(|fact| match fact.kind {
                    FactKind::LotAvailability | FactKind::CongestionLevel => 15 * MINUTES,
                    FactKind::EventCancelled | FactKind::EventReinstated | FactKind::ParkClosed => {
                        6 * 60 * MINUTES
                    }
                })
                .max()
                .unwrap_or(15 * MINUTES),
        };
        std::time::Duration::from_secs(seconds)
    }

    fn payload(&self) -> serde_json::Value {
        let encoded = match self {
            Message::Refresh(refresh) => serde_json::to_value(refresh),
            Message::Facts(facts) => serde_json::to_value(facts),
        };
        encoded.expect("outbox messages are plain data")
    }

    /// Reads a stored row back.
    pub fn decode(destination: &str, payload: serde_json::Value) -> Result<Message, DecodeError> {
        let decoded = match destination {
            "forecast" => serde_json::from_value(payload).map(Message::Refresh),
            "push" => serde_json::from_value(payload).map(Message::Facts),
            other => return Err(DecodeError::Destination(other.to_owned())),
        };
        let destination = if destination == "forecast" { "forecast" } else { "push" };
        decoded.map_err(|error| DecodeError::Payload { destination, error })
    }
}

impl From<Refresh> for RefreshRequest {
    fn from(refresh: Refresh) -> RefreshRequest {
        RefreshRequest {
            lot_ids: refresh.lot_ids,
            park_ids: refresh.park_ids,
            as_of: Some(prost_types::Timestamp {
                seconds: refresh.as_of.as_unix_seconds(),
                nanos: 0,
            }),
            cycle_id: refresh.cycle_id,
        }
    }
}

/// The push service's request for a batch.
pub fn submit_facts(batch: FactBatch) -> SubmitFactsRequest {
    SubmitFactsRequest { facts: batch.facts.into_iter().map(Into::into).collect() }
}

/// Queues a message in the caller's transaction, with the current trace so its delivery joins it and its
/// deadline ([`Message::deliver_within`]).
pub async fn enqueue(tx: &mut Transaction<'_, Postgres>, message: &Message) -> sqlx::Result<()> {
    sqlx::query(
        "insert into ingest.outbox (destination, payload, traceparent, deliver_by)
         values ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(message.destination())
    .bind(message.payload())
    .bind(telemetry::current_traceparent())
    .bind(message.deliver_within().as_secs_f64())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use contracts::fact::Fact;

    use super::*;

    #[test]
    fn messages_read_back_as_written_and_unknown_rows_are_errors() {
        let at = Timestamp::from_unix_seconds(1_781_425_200).unwrap();
        let refresh = Message::Refresh(Refresh {
            lot_ids: vec!["yeouido-2".into()],
            park_ids: vec![],
            as_of: at,
            cycle_id: "7".into(),
        });
        let facts = Message::Facts(FactBatch {
            facts: vec![Fact::new("k".into(), FactKind::ParkClosed, "banpo".into())],
        });
        for message in [refresh, facts] {
            let read = Message::decode(message.destination(), message.payload()).unwrap();
            assert_eq!(read, message);
        }
        assert!(matches!(
            Message::decode("mail", serde_json::json!({})),
            Err(DecodeError::Destination(_))
        ));
        assert!(matches!(
            Message::decode("push", serde_json::json!({"facts": [{"kind": "lot_availability"}]})),
            Err(DecodeError::Payload { destination: "push", .. })
        ));
    }

    #[test]
    fn a_batch_lives_as_long_as_its_longest_lived_fact() {
        let fact = |kind| Fact::new("k".into(), kind, "banpo".into());
        let lots = Message::Facts(FactBatch { facts: vec![fact(FactKind::LotAvailability)] });
        let mixed = Message::Facts(FactBatch {
            facts: vec![fact(FactKind::LotAvailability), fact(FactKind::ParkClosed)],
        });
        assert_eq!(lots.deliver_within().as_secs(), 15 * 60);
        assert_eq!(mixed.deliver_within().as_secs(), 6 * 3600);
    }
}
