//! Delivers the outbox: forecast refreshes and push facts queued with each cycle's data, over gRPC with
//! deadlines, retried with exponential backoff until the peer answers.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several replicas dispatch without sending a row twice at
//! the same time. Delivery is at least once: if a call succeeds and the process dies before marking the row,
//! it is sent again, which both peers tolerate (push stores facts idempotently by `fact_key`; a refresh is
//! naturally repeatable).

use std::time::Duration;

use contracts::proto::{
    forecast::v1::{RefreshRequest, forecast_client::ForecastClient},
    push::v1::{Fact, FactKind, SubmitFactsRequest, push_client::PushClient},
};
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tracing::Instrument;

/// How long one delivery may take.
const DEADLINE: Duration = Duration::from_secs(5);
/// Rows claimed per round.
const BATCH: i64 = 50;
/// Longest wait between attempts of one row.
const MAX_RETRY_SECONDS: i64 = 300;

/// The peers and the queue.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    pub pool: PgPool,
    pub forecast: Option<ForecastClient<Channel>>,
    pub push: Option<PushClient<Channel>>,
}

/// A lazily connecting channel to `url` (connection failures surface per call, and are retried).
pub fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy())
}

impl Dispatcher {
    /// Delivers until `shutdown`, polling every `every`.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        loop {
            match self.deliver_due().await {
                Ok(0) => {}
                Ok(delivered) => tracing::debug!(delivered, "outbox delivered"),
                Err(error) => tracing::warn!(%error, "outbox round failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One round: claims due rows, sends them, records each result. Returns how many were delivered.
    pub async fn deliver_due(&self) -> sqlx::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(i64, String, Value, i32, Option<String>)> = sqlx::query_as(
            "select outbox_id, destination, payload, attempts, traceparent from ingest.outbox
             where delivered_at is null and next_attempt_at <= now()
             order by outbox_id
             limit $1
             for update skip locked",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut delivered = 0;
        for (outbox_id, destination, payload, attempts, traceparent) in rows {
            // The delivery continues the trace of the cycle that queued the row.
            let span = tracing::info_span!("outbox delivery", %destination, outbox_id, attempts);
            if let Some(traceparent) = &traceparent {
                telemetry::set_parent_traceparent(&span, traceparent);
            }
            match self.send(&destination, &payload).instrument(span).await {
                Ok(()) => {
                    sqlx::query("update ingest.outbox set delivered_at = now(), attempts = attempts + 1 where outbox_id = $1")
                        .bind(outbox_id)
                        .execute(&mut *tx)
                        .await?;
                    delivered += 1;
                }
                Err(error) => {
                    let wait = (1_i64 << attempts.clamp(0, 16)).min(MAX_RETRY_SECONDS);
                    sqlx::query(
                        "update ingest.outbox
                         set attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3)
                         where outbox_id = $1",
                    )
                    .bind(outbox_id)
                    .bind(&error)
                    .bind(wait as f64)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(delivered)
    }

    async fn send(&self, destination: &str, payload: &Value) -> Result<(), String> {
        match destination {
            "forecast" => {
                let Some(client) = &self.forecast else {
                    return Err("FORECAST_GRPC_URL is not configured".into());
                };
                let mut request = tonic::Request::new(refresh_request(payload));
                request.set_timeout(DEADLINE);
                server::trace::propagate(&mut request);
                client
                    .clone()
                    .refresh(request)
                    .await
                    .map(drop)
                    .map_err(|status| format!("forecast: {status}"))
            }
            "push" => {
                let Some(client) = &self.push else {
                    return Err("PUSH_GRPC_URL is not configured".into());
                };
                let mut request = tonic::Request::new(facts_request(payload));
                request.set_timeout(DEADLINE);
                server::trace::propagate(&mut request);
                client
                    .clone()
                    .submit_facts(request)
                    .await
                    .map(drop)
                    .map_err(|status| format!("push: {status}"))
            }
            other => Err(format!("unknown destination `{other}`")),
        }
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn proto_time(value: &Value) -> Option<prost_types::Timestamp> {
    let instant: contracts::Timestamp = value.as_str()?.parse().ok()?;
    Some(prost_types::Timestamp { seconds: instant.as_unix_seconds(), nanos: 0 })
}

/// The queued refresh as the forecast service's request.
pub fn refresh_request(payload: &Value) -> RefreshRequest {
    RefreshRequest {
        lot_ids: strings(&payload["lot_ids"]),
        park_ids: strings(&payload["park_ids"]),
        as_of: proto_time(&payload["as_of"]),
        cycle_id: payload["cycle_id"].as_str().unwrap_or_default().to_owned(),
    }
}

/// The queued facts as the push service's request.
pub fn facts_request(payload: &Value) -> SubmitFactsRequest {
    let facts = payload["facts"].as_array().cloned().unwrap_or_default();
    SubmitFactsRequest {
        facts: facts
            .iter()
            .map(|fact| {
                let text = |name: &str| fact[name].as_str().map(str::to_owned);
                Fact {
                    fact_key: text("fact_key").unwrap_or_default(),
                    kind: match fact["kind"].as_str() {
                        Some("lot_availability") => FactKind::LotAvailability,
                        Some("congestion_level") => FactKind::CongestionLevel,
                        Some("event_cancelled") => FactKind::EventCancelled,
                        Some("park_closed") => FactKind::ParkClosed,
                        Some("event_reinstated") => FactKind::EventReinstated,
                        _ => FactKind::Unspecified,
                    } as i32,
                    park_id: text("park_id").unwrap_or_default(),
                    lot_id: text("lot_id"),
                    observed_at: proto_time(&fact["observed_at"]),
                    fetched_at: proto_time(&fact["fetched_at"]),
                    previous_value: fact["previous_value"].as_i64(),
                    current_value: fact["current_value"].as_i64(),
                    previous_level: text("previous_level"),
                    current_level: text("current_level"),
                    event_id: text("event_id"),
                    attributes: fact["attributes"]
                        .as_object()
                        .map(|attributes| {
                            attributes
                                .iter()
                                .filter(|(_, value)| !value.is_null())
                                .map(|(key, value)| {
                                    (
                                        key.clone(),
                                        value
                                            .as_str()
                                            .map_or_else(|| value.to_string(), str::to_owned),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect(),
    }
}
