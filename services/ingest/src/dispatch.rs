//! Delivers the outbox: forecast refreshes and push facts queued with each cycle's data (`crate::outbox`),
//! over gRPC with deadlines, retried with exponential backoff until the peer answers.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several replicas dispatch without sending a row twice at
//! the same time. Delivery is at least once: if a call succeeds and the process dies before marking the row,
//! it is sent again, which both peers tolerate (push stores facts idempotently by `fact_key`; a refresh is
//! naturally repeatable).

use std::time::Duration;

use contracts::proto::{
    forecast::v1::{RefreshRequest, forecast_client::ForecastClient},
    push::v1::push_client::PushClient,
};
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::outbox::{self, DecodeError, Message};

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
            let delivery = match Message::decode(&destination, payload) {
                Ok(message) => self.send(message).instrument(span).await,
                Err(error) => Err(DeliveryError::from(error)),
            };
            match delivery {
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
                    .bind(error.to_string())
                    .bind(wait as f64)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(delivered)
    }

    async fn send(&self, message: Message) -> Result<(), DeliveryError> {
        match message {
            Message::Refresh(refresh) => {
                let client = self
                    .forecast
                    .as_ref()
                    .ok_or(DeliveryError::NotConfigured("FORECAST_GRPC_URL"))?;
                let mut request = tonic::Request::new(RefreshRequest::from(refresh));
                request.set_timeout(DEADLINE);
                server::trace::propagate(&mut request);
                client.clone().refresh(request).await.map(drop).map_err(|status| {
                    DeliveryError::Refused { peer: "forecast", status: Box::new(status) }
                })
            }
            Message::Facts(batch) => {
                let client =
                    self.push.as_ref().ok_or(DeliveryError::NotConfigured("PUSH_GRPC_URL"))?;
                let mut request = tonic::Request::new(outbox::submit_facts(batch));
                request.set_timeout(DEADLINE);
                server::trace::propagate(&mut request);
                client.clone().submit_facts(request).await.map(drop).map_err(|status| {
                    DeliveryError::Refused { peer: "push", status: Box::new(status) }
                })
            }
        }
    }
}

/// Why a row was not delivered this round (recorded as its `last_error`; retried).
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    #[error("{peer}: {status}")]
    Refused { peer: &'static str, status: Box<tonic::Status> },
    #[error(transparent)]
    Undecodable(#[from] DecodeError),
}
