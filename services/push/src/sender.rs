//! The sender: drains `push.outbox` to APNs. Any number of senders (tasks or replicas) run at once: a round
//! claims due rows with a lease (`claim_id`, `claimed_until`) in one short statement, sends outside any
//! transaction, at most `in_flight` at a time, and records each answer in its own small transaction; a
//! lease that expired (its sender died) makes the rows claimable again. So no row is sent by two senders at
//! once, no transaction is held across APNs, and a sender killed mid-round sends again only what was on the
//! wire when it died (APNs accepted it, the record did not commit), never its whole batch.
//!
//! Every attempt is recorded with APNs' status, `apns-id` and reason. `200` → sent; `410` or a dead token →
//! the installation is deactivated if it still has the token that failed (one refreshed meanwhile keeps going,
//! its alert retried to the new token); other `4xx` → dead (retrying cannot help); `429`, `5xx` and transport
//! failures → retried with exponential backoff and jitter, dead after [`MAX_ATTEMPTS`]; past its expiry an
//! alert is dropped as expired instead of arriving late.

use std::{
    hash::{BuildHasher, RandomState},
    sync::Arc,
    time::Duration,
};

use contracts::Timestamp;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    apns::{Answer, ApnsClient, MAX_PAYLOAD_BYTES, Notification, TransportError},
    metrics::Metrics,
};

/// Attempts before an alert is given up as dead.
pub const MAX_ATTEMPTS: i32 = 8;
/// Rows one round claims.
const BATCH: i64 = 500;
/// How long a claim holds its alerts by default: well past a send (two APNs requests) plus the wait behind
/// the in-flight limit. A sender that dies leaves its alerts to others after at most this long.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Sends one sender has on the wire at once by default: the most a crash can send twice.
pub const DEFAULT_IN_FLIGHT: usize = 64;
/// Room left between a send's end and its lease's (clocks and the recording statement).
const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// A fresh claim's id (random: only the claim's own recordings must match it).
fn new_claim_id() -> i64 {
    (RandomState::new().hash_one(std::time::SystemTime::now()) >> 1) as i64
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub sent: u32,
    pub retried: u32,
    pub dead: u32,
    pub deactivated: u32,
    pub expired: u32,
}

impl Round {
    pub fn handled(&self) -> u32 {
        self.sent + self.retried + self.dead + self.deactivated + self.expired
    }
}

/// A sender over the outbox.
#[derive(Clone, Debug)]
pub struct Sender {
    pub pool: PgPool,
    pub apns: Arc<ApnsClient>,
    /// Decides "now" for each round.
    pub clock: server::clock::Clock,
    /// How long a claim holds its alerts ([`DEFAULT_LEASE`]); must outlast a send.
    pub lease: Duration,
    /// Sends on the wire at once ([`DEFAULT_IN_FLIGHT`]).
    pub in_flight: usize,
}

/// The `apns-id` of an outbox row: a UUID derived from its id, the same on every retry.
pub fn apns_id(outbox_id: i64) -> String {
    format!("00000000-0000-4000-8000-{:012x}", outbox_id as u64 & 0xffff_ffff_ffff)
}

/// Seconds to wait before attempt `attempts + 2`: 2^(attempts + 1), capped at five minutes, ±20 %.
fn backoff_seconds(attempts: i32) -> f64 {
    let base = f64::from(2_u32 << attempts.clamp(0, 8)).min(300.0);
    let jitter = (RandomState::new().hash_one(attempts) % 401) as f64 / 1_000.0 - 0.2;
    base * (1.0 + jitter)
}

enum Next {
    Sent,
    Retry(String),
    Dead(String),
    Deactivate(String),
}

fn classify(status: u16, reason: Option<&str>) -> Next {
    let reason_text = reason.unwrap_or("no reason").to_owned();
    match (status, reason) {
        (200, _) => Next::Sent,
        (410, _) | (400, Some("BadDeviceToken" | "DeviceTokenNotForTopic")) => {
            Next::Deactivate(reason_text)
        }
        (429 | 500..=599, _) | (403, Some("ExpiredProviderToken" | "InvalidProviderToken")) => {
            Next::Retry(reason_text)
        }
        _ => Next::Dead(format!("{status} {reason_text}")),
    }
}

/// One claimed alert, with the installation it goes to as it was at the claim.
#[derive(sqlx::FromRow)]
struct Claimed {
    outbox_id: i64,
    collapse_id: String,
    payload: serde_json::Value,
    expires_at: time::OffsetDateTime,
    attempts: i32,
    installation_id: String,
    traceparent: Option<String>,
    #[sqlx(rename = "apns_token")]
    token: String,
    #[sqlx(rename = "apns_environment")]
    environment: String,
    active: bool,
}

impl Claimed {
    fn expires_at(&self) -> Timestamp {
        db::wire_time(self.expires_at)
    }
}

/// What became of one claimed alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recorded {
    Sent,
    Retried,
    Dead,
    Deactivated,
    Expired,
    /// The claim was gone when the result came (the installation was deleted meanwhile): nothing recorded.
    Vanished,
}

impl Round {
    fn count(&mut self, recorded: Recorded) {
        match recorded {
            Recorded::Sent => self.sent += 1,
            Recorded::Retried => self.retried += 1,
            Recorded::Dead => self.dead += 1,
            Recorded::Deactivated => self.deactivated += 1,
            Recorded::Expired => self.expired += 1,
            Recorded::Vanished => {}
        }
    }
}

impl Sender {
    /// A sender with the default lease and in-flight limit.
    pub fn new(pool: PgPool, apns: Arc<ApnsClient>, clock: server::clock::Clock) -> Sender {
        Sender { pool, apns, clock, lease: DEFAULT_LEASE, in_flight: DEFAULT_IN_FLIGHT }
    }

    /// One round at `now` in three steps, none of which holds a transaction across a network call: claims
    /// due alerts with a lease (one short statement), sends them at most `in_flight` at a time, and records
    /// each result in its own small transaction the moment it arrives. A send starts only while the lease
    /// outlasts it, so no other sender can take the alert mid-send; alerts left unsent are released.
    pub async fn send_due(&self, now: Timestamp) -> sqlx::Result<Round> {
        let claim_id = new_claim_id();
        let claimed_at = std::time::Instant::now();
        let claimed = self.claim(now, claim_id).await?;
        let mut round = Round::default();
        let permits = Arc::new(tokio::sync::Semaphore::new(self.in_flight.max(1)));
        let mut sends = JoinSet::new();
        let mut unsent = Vec::new();
        let mut queue = claimed.into_iter();
        while let Some(alert) = queue.next() {
            if alert.expires_at() <= now {
                round.count(self.close(&alert, claim_id, Recorded::Expired, None).await?);
                continue;
            }
            if !alert.active {
                let inactive = Some("installation inactive");
                round.count(self.close(&alert, claim_id, Recorded::Deactivated, inactive).await?);
                continue;
            }
            let body = serde_json::to_vec(&alert.payload).expect("json serializes");
            if body.len() > MAX_PAYLOAD_BYTES {
                let oversized = Some("payload over 4 KB");
                round.count(self.close(&alert, claim_id, Recorded::Dead, oversized).await?);
                continue;
            }
            let permit =
                permits.clone().acquire_owned().await.expect("the semaphore is never closed");
            if claimed_at.elapsed() + self.apns.longest_send() + LEASE_MARGIN >= self.lease {
                unsent.push(alert.outbox_id);
                unsent.extend(queue.map(|alert| alert.outbox_id));
                break;
            }
            // The send continues the trace of the facts that caused the alert.
            let span = tracing::info_span!(
                "apns send",
                outbox_id = alert.outbox_id,
                attempt = alert.attempts + 1
            );
            if let Some(traceparent) = &alert.traceparent {
                telemetry::set_parent_traceparent(&span, traceparent);
            }
            let sender = self.clone();
            sends.spawn(
                async move {
                    let recorded = sender.send_and_record(alert, body, claim_id, now).await;
                    drop(permit);
                    recorded
                }
                .instrument(span),
            );
        }
        let mut failed = None;
        while let Some(joined) = sends.join_next().await {
            match joined.expect("send tasks do not panic") {
                Ok(recorded) => round.count(recorded),
                // One result that could not be recorded stays claimed and is sent again after its lease.
                Err(error) => failed = Some(error),
            }
        }
        self.release(claim_id, &unsent).await?;
        match failed {
            Some(error) => Err(error),
            None => Ok(round),
        }
    }

    /// Claims up to [`BATCH`] due alerts no live lease holds, for `lease`, in one statement.
    async fn claim(&self, now: Timestamp, claim_id: i64) -> sqlx::Result<Vec<Claimed>> {
        sqlx::query_as(
            "with due as (
                select outbox_id from push.outbox
                -- `$1` has whole seconds; rows queued within that second are due too.
                where status = 'pending' and next_attempt_at < $1 + interval '1 second'
                  and (claimed_until is null or claimed_until < clock_timestamp())
                order by next_attempt_at
                limit $2
                for update skip locked),
             claimed as (
                update push.outbox o
                set claim_id = $3, claimed_until = clock_timestamp() + make_interval(secs => $4)
                from due where o.outbox_id = due.outbox_id
                returning o.outbox_id, o.collapse_id, o.payload, o.expires_at, o.attempts, o.installation_id,
                          o.traceparent)
             select c.outbox_id, c.collapse_id, c.payload, c.expires_at, c.attempts, c.installation_id,
                    c.traceparent, i.apns_token, i.apns_environment, i.active
             from claimed c join push.installation i using (installation_id)
             order by c.outbox_id",
        )
        .bind(db::db_time(now))
        .bind(BATCH)
        .bind(claim_id)
        .bind(self.lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await
    }

    /// Sends one alert and records what APNs answered.
    async fn send_and_record(
        &self,
        alert: Claimed,
        body: Vec<u8>,
        claim_id: i64,
        now: Timestamp,
    ) -> sqlx::Result<Recorded> {
        let notification = Notification {
            device_token: &alert.token,
            sandbox: alert.environment == "sandbox",
            payload: &body,
            collapse_id: &alert.collapse_id,
            expiration: alert.expires_at().as_unix_seconds(),
            apns_id: &apns_id(alert.outbox_id),
        };
        let answer = self.apns.send(&notification, now.as_unix_seconds()).await;
        self.record(&alert, claim_id, now, answer).await
    }

    /// Records one answer in one small transaction: the attempt, the alert's new state, and for a refused
    /// token the installation (locked before the alert, in the order an installation delete locks them, so
    /// the two never deadlock). Nothing is recorded if the claim is gone.
    async fn record(
        &self,
        alert: &Claimed,
        claim_id: i64,
        now: Timestamp,
        answer: Result<Answer, TransportError>,
    ) -> sqlx::Result<Recorded> {
        let (http_status, answered_id, reason) = match &answer {
            Ok(answer) => {
                (Some(i32::from(answer.status)), answer.apns_id.clone(), answer.reason.clone())
            }
            Err(error) => (None, None, Some(error.to_string())),
        };
        let next = match &answer {
            Ok(answer) => classify(answer.status, answer.reason.as_deref()),
            Err(error) => Next::Retry(error.to_string()),
        };
        let retry_at = |wait: f64| db::db_time(now) + time::Duration::seconds_f64(wait);
        let mut tx = self.pool.begin().await?;
        let (status, error, next_attempt_at, recorded) = match next {
            Next::Sent => ("sent", None, None, Recorded::Sent),
            Next::Retry(error) if alert.attempts + 1 < MAX_ATTEMPTS => (
                "pending",
                Some(error),
                Some(retry_at(backoff_seconds(alert.attempts))),
                Recorded::Retried,
            ),
            Next::Retry(error) | Next::Dead(error) => ("dead", Some(error), None, Recorded::Dead),
            Next::Deactivate(reason) => {
                // Only the token APNs refused is gone: an installation that refreshed its token while the
                // answer was on its way stays active, and its alert is retried to the new token at once.
                let gone = sqlx::query(
                    "update push.installation set active = false, deactivated_reason = $3, updated_at = now()
                     where installation_id = $1 and apns_token = $2",
                )
                .bind(&alert.installation_id)
                .bind(&alert.token)
                .bind(&reason)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                if gone {
                    ("deactivated", Some(reason), None, Recorded::Deactivated)
                } else {
                    let error = format!("{reason} for a token since replaced");
                    ("pending", Some(error), Some(db::db_time(now)), Recorded::Retried)
                }
            }
        };
        // `sent_at` is the moment APNs' answer is recorded, to the microsecond (`now` has whole seconds and was
        // read before the send): the outbox's lag is measured from it.
        let kept: Option<(i64,)> = sqlx::query_as(
            "with updated as (
                update push.outbox
                set status = $3, last_error = $4, attempts = attempts + 1,
                    next_attempt_at = coalesce($5, next_attempt_at),
                    sent_at = case when $3 = 'sent' then clock_timestamp() else sent_at end,
                    claim_id = null, claimed_until = null
                where outbox_id = $1 and claim_id = $2
                returning outbox_id)
             insert into push.delivery_attempt (outbox_id, attempted_at, http_status, apns_id, reason)
             select outbox_id, $6, $7, $8, $9 from updated
             returning outbox_id",
        )
        .bind(alert.outbox_id)
        .bind(claim_id)
        .bind(status)
        .bind(error)
        .bind(next_attempt_at)
        .bind(db::db_time(now))
        .bind(http_status)
        .bind(answered_id)
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await?;
        if kept.is_none() {
            tx.rollback().await?;
            return Ok(Recorded::Vanished);
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Ends a claimed alert without sending it (expired, inactive installation, oversized) as `ending`.
    async fn close(
        &self,
        alert: &Claimed,
        claim_id: i64,
        ending: Recorded,
        error: Option<&str>,
    ) -> sqlx::Result<Recorded> {
        let status = match ending {
            Recorded::Expired => "expired",
            Recorded::Deactivated => "deactivated",
            _ => "dead",
        };
        let closed = sqlx::query(
            "update push.outbox set status = $3, last_error = $4, claim_id = null, claimed_until = null
             where outbox_id = $1 and claim_id = $2",
        )
        .bind(alert.outbox_id)
        .bind(claim_id)
        .bind(status)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(if closed.rows_affected() == 0 { Recorded::Vanished } else { ending })
    }

    /// Gives back claimed alerts this round did not send (its lease ran short), for the next round at once.
    async fn release(&self, claim_id: i64, unsent: &[i64]) -> sqlx::Result<()> {
        if unsent.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "update push.outbox set claim_id = null, claimed_until = null
             where outbox_id = any($1) and claim_id = $2",
        )
        .bind(unsent)
        .bind(claim_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sends until `shutdown`, polling every `idle` when there is nothing to send.
    pub async fn run(self, idle: Duration, metrics: Metrics, shutdown: CancellationToken) {
        loop {
            let round = self.send_due(self.clock.now()).await;
            metrics.round(round.as_ref().ok());
            let busy = match round {
                Ok(round) => round.handled() > 0,
                Err(error) => {
                    tracing::warn!(%error, "send round failed");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(idle) => {}
                }
            } else if shutdown.is_cancelled() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert!(matches!(classify(200, None), Next::Sent));
        assert!(matches!(classify(410, Some("Unregistered")), Next::Deactivate(_)));
        assert!(matches!(classify(400, Some("BadDeviceToken")), Next::Deactivate(_)));
        assert!(matches!(classify(429, Some("TooManyRequests")), Next::Retry(_)));
        assert!(matches!(classify(503, Some("ServiceUnavailable")), Next::Retry(_)));
        assert!(matches!(classify(400, Some("BadCollapseId")), Next::Dead(_)));
        assert!(matches!(classify(413, Some("PayloadTooLarge")), Next::Dead(_)));
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        for attempts in 0..12 {
            let wait = backoff_seconds(attempts);
            let base = f64::from(2_u32 << attempts.clamp(0, 8)).min(300.0);
            assert!((base * 0.8..=base * 1.2).contains(&wait), "{attempts}: {wait}");
        }
    }

    #[test]
    fn apns_ids_are_uuids_stable_per_row() {
        assert_eq!(apns_id(42), "00000000-0000-4000-8000-00000000002a");
    }
}
