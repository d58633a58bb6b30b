//! The sender: drains `push.outbox` to APNs. Any number of senders (tasks or replicas) run at once: rows are
//! claimed with `FOR UPDATE SKIP LOCKED`, so none is sent by two senders at the same time.
//!
//! Every attempt is recorded with APNs' status, `apns-id` and reason. `200` → sent; `410` or a dead token →
//! the installation is deactivated if it still has the token that failed (one refreshed meanwhile keeps going,
//! its alert retried to the new token); other `4xx` → dead (retrying cannot help); `429`, `5xx` and transport
//! failures → retried with exponential backoff and jitter, dead after [`MAX_ATTEMPTS`]; past its expiry an
//! alert is dropped as expired instead of arriving late. Delivery is at least once: a sender that dies after
//! APNs accepted an alert but before recording it sends it again, with the same `apns-collapse-id` and
//! `apns-id`, so the device shows it once.

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
    apns::{ApnsClient, MAX_PAYLOAD_BYTES, Notification},
    metrics::Metrics,
};

/// Attempts before an alert is given up as dead.
pub const MAX_ATTEMPTS: i32 = 8;
/// Rows one round claims.
const BATCH: i64 = 500;

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

impl Sender {
    /// One round at `now`: claims due alerts, sends them concurrently, records every result.
    pub async fn send_due(&self, now: Timestamp) -> sqlx::Result<Round> {
        let mut tx = self.pool.begin().await?;
        type Row = (
            i64,
            String,
            serde_json::Value,
            time::OffsetDateTime,
            i32,
            String,
            String,
            bool,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "select o.outbox_id, o.collapse_id, o.payload, o.expires_at, o.attempts,
                    i.apns_token, i.apns_environment, i.active, i.installation_id, o.traceparent
             from push.outbox o join push.installation i using (installation_id)
             -- `$1` has whole seconds; rows queued within that second are due too.
             where o.status = 'pending' and o.next_attempt_at < $1 + interval '1 second'
             order by o.next_attempt_at
             limit $2
             for update of o skip locked",
        )
        .bind(db::db_time(now))
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut round = Round::default();
        let mut sends = JoinSet::new();
        for (
            outbox_id,
            collapse_id,
            payload,
            expires_at,
            attempts,
            token,
            environment,
            active,
            installation_id,
            traceparent,
        ) in rows
        {
            let expires_at = db::wire_time(expires_at);
            if expires_at <= now {
                set_status(&mut tx, outbox_id, "expired", None).await?;
                round.expired += 1;
                continue;
            }
            if !active {
                set_status(&mut tx, outbox_id, "deactivated", Some("installation inactive"))
                    .await?;
                round.deactivated += 1;
                continue;
            }
            let body = serde_json::to_vec(&payload).expect("json serializes");
            if body.len() > MAX_PAYLOAD_BYTES {
                set_status(&mut tx, outbox_id, "dead", Some("payload over 4 KB")).await?;
                round.dead += 1;
                continue;
            }
            let apns = self.apns.clone();
            // The send continues the trace of the facts that caused the alert.
            let span = tracing::info_span!("apns send", outbox_id, attempt = attempts + 1);
            if let Some(traceparent) = &traceparent {
                telemetry::set_parent_traceparent(&span, traceparent);
            }
            let send = async move {
                let notification = Notification {
                    device_token: &token,
                    sandbox: environment == "sandbox",
                    payload: &body,
                    collapse_id: &collapse_id,
                    expiration: expires_at.as_unix_seconds(),
                    apns_id: &apns_id(outbox_id),
                };
                let answer = apns.send(&notification, now.as_unix_seconds()).await;
                (outbox_id, attempts, installation_id, token, answer)
            };
            sends.spawn(send.instrument(span));
        }
        // Record the results in a few set-based statements, however many alerts the round sent.
        let attempted_at = db::db_time(now);
        let (mut attempt_ids, mut statuses, mut apns_ids, mut reasons) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut sent = Vec::new();
        let (mut retry_ids, mut retry_errors, mut retry_waits) =
            (Vec::new(), Vec::new(), Vec::new());
        let (mut dead_ids, mut dead_errors) = (Vec::new(), Vec::new());
        let (mut gone_ids, mut gone_reasons, mut gone_installations, mut gone_tokens) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        while let Some(joined) = sends.join_next().await {
            let (outbox_id, attempts, installation_id, token, answer) =
                joined.expect("send tasks do not panic");
            attempt_ids.push(outbox_id);
            match &answer {
                Ok(answer) => {
                    statuses.push(Some(i32::from(answer.status)));
                    apns_ids.push(answer.apns_id.clone());
                    reasons.push(answer.reason.clone());
                }
                Err(error) => {
                    statuses.push(None);
                    apns_ids.push(None);
                    reasons.push(Some(error.to_string()));
                }
            }
            let next = match &answer {
                Ok(answer) => classify(answer.status, answer.reason.as_deref()),
                Err(error) => Next::Retry(error.to_string()),
            };
            match next {
                Next::Sent => sent.push(outbox_id),
                Next::Retry(error) if attempts + 1 < MAX_ATTEMPTS => {
                    retry_ids.push(outbox_id);
                    retry_errors.push(error);
                    retry_waits.push(backoff_seconds(attempts));
                }
                Next::Retry(error) | Next::Dead(error) => {
                    dead_ids.push(outbox_id);
                    dead_errors.push(error);
                }
                Next::Deactivate(reason) => {
                    gone_ids.push(outbox_id);
                    gone_reasons.push(reason);
                    gone_installations.push(installation_id);
                    gone_tokens.push(token);
                }
            }
        }
        if !attempt_ids.is_empty() {
            sqlx::query(
                "insert into push.delivery_attempt (outbox_id, attempted_at, http_status, apns_id, reason)
                 select outbox_id, $5, http_status, apns_id, reason
                 from unnest($1::bigint[], $2::int[], $3::text[], $4::text[]) as t(outbox_id, http_status, apns_id, reason)",
            )
            .bind(&attempt_ids)
            .bind(&statuses)
            .bind(&apns_ids)
            .bind(&reasons)
            .bind(attempted_at)
            .execute(&mut *tx)
            .await?;
        }
        // `sent_at` is the moment APNs' answer is recorded, to the microsecond (`now` has whole seconds and was
        // read before the sends): the outbox's lag is measured from it.
        sqlx::query(
            "update push.outbox set status = 'sent', sent_at = clock_timestamp(), attempts = attempts + 1,
                    last_error = null
             where outbox_id = any($1)",
        )
        .bind(&sent)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update push.outbox o
             set attempts = o.attempts + 1, last_error = t.error, next_attempt_at = $4 + make_interval(secs => t.wait)
             from unnest($1::bigint[], $2::text[], $3::float8[]) as t(id, error, wait)
             where o.outbox_id = t.id",
        )
        .bind(&retry_ids)
        .bind(&retry_errors)
        .bind(&retry_waits)
        .bind(db::db_time(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update push.outbox o set status = 'dead', attempts = o.attempts + 1, last_error = t.error
             from unnest($1::bigint[], $2::text[]) as t(id, error) where o.outbox_id = t.id",
        )
        .bind(&dead_ids)
        .bind(&dead_errors)
        .execute(&mut *tx)
        .await?;
        // Only the token APNs refused is gone: an installation that refreshed its token while the answer was on
        // its way stays active, and its alert is retried to the new token.
        let deactivated: Vec<(String,)> = sqlx::query_as(
            "update push.installation i set active = false, deactivated_reason = t.reason, updated_at = now()
             from unnest($1::text[], $2::text[], $3::text[]) as t(id, reason, token)
             where i.installation_id = t.id and i.apns_token = t.token
             returning i.installation_id",
        )
        .bind(&gone_installations)
        .bind(&gone_reasons)
        .bind(&gone_tokens)
        .fetch_all(&mut *tx)
        .await?;
        let deactivated: std::collections::HashSet<String> =
            deactivated.into_iter().map(|(id,)| id).collect();
        let (mut refreshed_ids, mut refreshed_errors) = (Vec::new(), Vec::new());
        let mut gone_rows = (Vec::new(), Vec::new());
        for ((outbox_id, reason), installation_id) in
            gone_ids.into_iter().zip(gone_reasons).zip(&gone_installations)
        {
            if deactivated.contains(installation_id) {
                gone_rows.0.push(outbox_id);
                gone_rows.1.push(reason);
            } else {
                refreshed_ids.push(outbox_id);
                refreshed_errors.push(format!("{reason} for a token since replaced"));
            }
        }
        sqlx::query(
            "update push.outbox o set status = 'deactivated', attempts = o.attempts + 1, last_error = t.reason
             from unnest($1::bigint[], $2::text[]) as t(id, reason) where o.outbox_id = t.id",
        )
        .bind(&gone_rows.0)
        .bind(&gone_rows.1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update push.outbox o set attempts = o.attempts + 1, last_error = t.error, next_attempt_at = $3
             from unnest($1::bigint[], $2::text[]) as t(id, error) where o.outbox_id = t.id",
        )
        .bind(&refreshed_ids)
        .bind(&refreshed_errors)
        .bind(db::db_time(now))
        .execute(&mut *tx)
        .await?;
        round.sent += sent.len() as u32;
        round.retried += retry_ids.len() as u32;
        round.dead += dead_ids.len() as u32;
        round.retried += refreshed_ids.len() as u32;
        round.deactivated += gone_rows.0.len() as u32;
        tx.commit().await?;
        Ok(round)
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

async fn set_status(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    outbox_id: i64,
    status: &str,
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("update push.outbox set status = $2, last_error = $3 where outbox_id = $1")
        .bind(outbox_id)
        .bind(status)
        .bind(error)
        .execute(&mut **tx)
        .await?;
    Ok(())
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
