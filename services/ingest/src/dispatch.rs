//! Delivers the outbox: forecast refreshes and push facts queued with each cycle's data (`crate::outbox`),
//! over gRPC with deadlines, retried with exponential backoff until the peer answers or the row's deadline
//! passes.
//!
//! Each destination is dispatched on its own, concurrently, so a hung forecast service delays nothing bound
//! for push. A round claims due rows in a short transaction by leasing them (pushing their next attempt past
//! the lease, `FOR UPDATE SKIP LOCKED`, so several replicas never claim a row together), sends them
//! concurrently outside any transaction, and records each result in a statement of its own. A row past its
//! `deliver_by` is recorded as expired (and counted) instead of being sent: a closure held through a long push
//! outage must not alert days later as if new. Delivered and expired rows are pruned after
//! [`RETENTION_DAYS`]. Delivery is at least once: if a call succeeds and the process dies before marking the
//! row, the lease runs out and it is sent again, which both peers tolerate (push stores facts idempotently by
//! `fact_key`; a refresh is naturally repeatable).

use std::time::Duration;

use contracts::proto::{
    forecast::v1::{RefreshRequest, forecast_client::ForecastClient},
    push::v1::push_client::PushClient,
};
use serde_json::Value;
use server::grpc_auth::AuthChannel;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::{
    metrics::Metrics,
    outbox::{self, DecodeError, Message},
};

/// How long one delivery may take.
const DEADLINE: Duration = Duration::from_secs(5);
/// Rows claimed per destination and round, sent concurrently.
const BATCH: i64 = 50;
/// Longest wait between attempts of one row.
const MAX_RETRY_SECONDS: i64 = 300;
/// How long a claimed row is its claimant's: longer than a delivery's deadline, so only a claimant that died
/// loses it to another.
const LEASE_SECONDS: f64 = 30.0;
/// Days delivered and expired rows are kept (for "was it delivered, and when?").
pub const RETENTION_DAYS: i32 = 7;
/// How often the dispatcher prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The peers and the queue.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    pub pool: PgPool,
    pub forecast: Option<ForecastClient<AuthChannel>>,
    pub push: Option<PushClient<AuthChannel>>,
    pub metrics: Metrics,
}

/// A lazily connecting channel to `url` (connection failures surface per call, and are retried).
pub fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy())
}

/// A claimed row.
type Claimed = (i64, Value, i32, Option<String>, Option<time::OffsetDateTime>);

impl Dispatcher {
    /// Delivers until `shutdown`, polling every `every`; prunes old rows every [`PRUNE_EVERY`].
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        let mut pruned_at: Option<std::time::Instant> = None;
        loop {
            match self.deliver_due().await {
                Ok(0) => {}
                Ok(delivered) => tracing::debug!(delivered, "outbox delivered"),
                Err(error) => tracing::warn!(%error, "outbox round failed"),
            }
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                match self.prune().await {
                    Ok(removed) => tracing::debug!(removed, "outbox pruned"),
                    Err(error) => tracing::warn!(%error, "outbox prune failed"),
                }
                pruned_at = Some(std::time::Instant::now());
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One round for every destination at once. Returns how many rows were delivered.
    pub async fn deliver_due(&self) -> sqlx::Result<usize> {
        let (forecast, push) =
            tokio::join!(self.deliver_destination("forecast"), self.deliver_destination("push"));
        Ok(forecast? + push?)
    }

    /// One round for `destination`: claims due rows, expires those past their deadline, sends the rest
    /// concurrently and records each result.
    async fn deliver_destination(&self, destination: &'static str) -> sqlx::Result<usize> {
        let rows: Vec<Claimed> = sqlx::query_as(
            "update ingest.outbox o set next_attempt_at = now() + make_interval(secs => $3)
             where o.outbox_id in (
                 select outbox_id from ingest.outbox
                 where destination = $1 and delivered_at is null and expired_at is null
                   and next_attempt_at <= now()
                 order by outbox_id
                 limit $2
                 for update skip locked)
             returning o.outbox_id, o.payload, o.attempts, o.traceparent, o.deliver_by",
        )
        .bind(destination)
        .bind(BATCH)
        .bind(LEASE_SECONDS)
        .fetch_all(&self.pool)
        .await?;
        let now = time::OffsetDateTime::now_utc();
        let mut sends = tokio::task::JoinSet::new();
        for (outbox_id, payload, attempts, traceparent, deliver_by) in rows {
            if deliver_by.is_some_and(|deadline| deadline <= now) {
                self.expire(destination, outbox_id).await?;
                continue;
            }
            // The delivery continues the trace of the cycle that queued the row.
            let span = tracing::info_span!("outbox delivery", %destination, outbox_id, attempts);
            if let Some(traceparent) = &traceparent {
                telemetry::set_parent_traceparent(&span, traceparent);
            }
            let dispatcher = self.clone();
            sends.spawn(
                async move {
                    let delivery = match Message::decode(destination, payload) {
                        Ok(message) => dispatcher.send(message).await,
                        Err(error) => Err(DeliveryError::from(error)),
                    };
                    (outbox_id, attempts, delivery)
                }
                .instrument(span),
            );
        }
        let mut delivered = 0;
        while let Some(joined) = sends.join_next().await {
            let (outbox_id, attempts, delivery) = joined.expect("deliveries do not panic");
            match delivery {
                Ok(()) => {
                    sqlx::query("update ingest.outbox set delivered_at = now(), attempts = attempts + 1 where outbox_id = $1")
                        .bind(outbox_id)
                        .execute(&self.pool)
                        .await?;
                    self.metrics.delivered(destination);
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
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(delivered)
    }

    /// Records a row as expired: never delivered, never picked again (by any release: its next attempt is
    /// `infinity`).
    async fn expire(&self, destination: &'static str, outbox_id: i64) -> sqlx::Result<()> {
        sqlx::query(
            "update ingest.outbox
             set expired_at = now(), next_attempt_at = 'infinity',
                 last_error = coalesce(last_error || '; ', '') || 'not delivered by its deadline: expired'
             where outbox_id = $1",
        )
        .bind(outbox_id)
        .execute(&self.pool)
        .await?;
        tracing::warn!(destination, outbox_id, "outbox row expired undelivered");
        self.metrics.expired(destination);
        Ok(())
    }

    /// Deletes rows delivered or expired more than [`RETENTION_DAYS`] ago; returns how many.
    pub async fn prune(&self) -> sqlx::Result<u64> {
        let removed = sqlx::query(
            "delete from ingest.outbox
             where coalesce(delivered_at, expired_at) < now() - make_interval(days => $1)",
        )
        .bind(RETENTION_DAYS)
        .execute(&self.pool)
        .await?;
        Ok(removed.rows_affected())
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
