//! The collection schedule: one loop per source with its own interval, jitter and backoff, run only by the
//! replica that holds the leader lock.
//!
//! Leadership (`crate::leadership`) is a PostgreSQL session advisory lock on a dedicated connection: the
//! server frees it when the leader's session ends — closed, dead (keepalives) or silent (it stops pinging and
//! its idle session times out after three pings) — and followers retry every `election_interval`, so a
//! replacement takes over within a few intervals. The leader pings its lock connection every interval with
//! about that interval as the timeout and steps down when a ping fails or is late; its runs in flight stop
//! with it, and a run that would store after the lock is gone is fenced off in its transaction.

use std::{
    hash::{BuildHasher, RandomState},
    sync::Arc,
    time::Duration,
};

use contracts::{Timestamp, freshness::SourceId};
use tokio_util::sync::CancellationToken;

use crate::{
    leadership::{self, Leadership, Lock, Standing},
    outcome::{ErrorClass, Outcome},
    runner::Runner,
    sources, store,
};

/// Longest wait after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// Wait after a quota error: quotas reset daily, hammering does not help.
const QUOTA_BACKOFF: Duration = Duration::from_secs(60 * 60);

/// How the scheduler runs.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub sources: Vec<SourceId>,
    /// How often a follower tries to become leader (also the leader's health-check period).
    pub election_interval: Duration,
    /// Multiplies every source interval (tests and `xtask dev` speed time up).
    pub interval_scale: f64,
    /// Where this replica's leadership is published (for `RunNow`).
    pub standing: Standing,
}

/// `interval` ± 10 %, so replicas and sources do not synchronise.
fn jittered(interval: Duration) -> Duration {
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    let fraction = (random % 2_001) as f64 / 10_000.0 - 0.1; // -0.1 ..= 0.1
    interval.mul_f64(1.0 + fraction)
}

/// The wait after a run: the interval, doubled per consecutive failure up to [`MAX_BACKOFF`], or a long wait
/// after a quota error.
pub fn next_delay(interval: Duration, outcome: &Outcome, consecutive_failures: u32) -> Duration {
    match outcome {
        Outcome::Failed(failure) if failure.class == ErrorClass::Quota => {
            QUOTA_BACKOFF.max(interval)
        }
        Outcome::Failed(_) => {
            interval.saturating_mul(1 << consecutive_failures.min(6)).min(MAX_BACKOFF.max(interval))
        }
        _ => interval,
    }
}

/// Runs the schedule until `shutdown`: campaigns for leadership, and collects while leader.
pub async fn run(runner: Arc<Runner>, schedule: Schedule, shutdown: CancellationToken) {
    loop {
        match Lock::try_acquire(&runner.pool, schedule.election_interval).await {
            Ok(Some(lock)) => {
                tracing::info!(pid = lock.leadership.session.pid, "became the collecting leader");
                schedule.standing.lead(lock.leadership.clone());
                close_interrupted_runs(&runner).await;
                lead(runner.clone(), &schedule, lock, &shutdown).await;
                tracing::info!("stepped down as leader");
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot campaign for leadership"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(schedule.election_interval) => {}
        }
    }
}

/// A run still unfinished this long after it started belongs to a process that died: every fetch and every
/// statement of a run has a timeout well below it.
pub const RUN_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// Records the runs a dead process left unfinished as `interrupted` (best effort: a failure is logged and
/// the next leadership tries again).
async fn close_interrupted_runs(runner: &Runner) {
    let deadline = i64::try_from(RUN_DEADLINE.as_secs()).unwrap_or(i64::MAX);
    let Ok(before) = Timestamp::from_unix_seconds(runner.clock.now().as_unix_seconds() - deadline)
    else {
        return;
    };
    match store::close_interrupted_runs(&runner.pool, before).await {
        Ok(0) => {}
        Ok(closed) => {
            tracing::warn!(closed, "closed runs a stopped process left unfinished as interrupted")
        }
        Err(error) => {
            tracing::warn!(%error, "cannot close the runs a stopped process left unfinished")
        }
    }
}

async fn lead(
    runner: Arc<Runner>,
    schedule: &Schedule,
    mut lock: Lock,
    shutdown: &CancellationToken,
) {
    let leadership = lock.leadership.clone();
    let loops: Vec<_> = schedule
        .sources
        .iter()
        .filter_map(|&source| {
            let interval = sources::interval(source)?.mul_f64(schedule.interval_scale);
            Some(tokio::spawn(source_loop(runner.clone(), source, interval, leadership.clone())))
        })
        .collect();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(schedule.election_interval) => {}
        }
        if !lock.ping(leadership::ping_timeout(schedule.election_interval)).await {
            tracing::warn!("the leader lock connection failed or went silent; stepping down");
            break;
        }
    }
    schedule.standing.step_down();
    // Cancels the leadership first: the loops stop, and a run in flight stops where it is.
    lock.release().await;
    for task in loops {
        let _ = task.await;
    }
}

async fn source_loop(
    runner: Arc<Runner>,
    source: SourceId,
    interval: Duration,
    leadership: Leadership,
) {
    let mut consecutive_failures = 0;
    // Start each source at a different moment within its first interval... but soon: the first screen waits.
    let mut delay = jittered(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = leadership.lost.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        let outcome = match runner.run_once(source, &leadership).await {
            Ok(report) => report.outcome,
            Err(error) => {
                tracing::error!(
                    source = source.as_str(),
                    error = format!("{error:#}"),
                    "collection could not be recorded"
                );
                Outcome::Failed(crate::outcome::Failure::new(
                    ErrorClass::Connect,
                    error.to_string(),
                ))
            }
        };
        consecutive_failures =
            if matches!(outcome, Outcome::Failed(_)) { consecutive_failures + 1 } else { 0 };
        delay = jittered(next_delay(interval, &outcome, consecutive_failures));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Failure;

    #[test]
    fn backoff_doubles_then_caps_and_quota_waits_an_hour() {
        let interval = Duration::from_secs(120);
        let failed = Outcome::Failed(Failure::new(ErrorClass::Timeout, "slow"));
        assert_eq!(next_delay(interval, &Outcome::Ok { items: 3 }, 0), interval);
        assert_eq!(next_delay(interval, &failed, 1), Duration::from_secs(240));
        assert_eq!(next_delay(interval, &failed, 3), Duration::from_secs(960));
        assert_eq!(next_delay(interval, &failed, 20), MAX_BACKOFF);
        let quota = Outcome::Failed(Failure::new(ErrorClass::Quota, "daily limit"));
        assert_eq!(next_delay(interval, &quota, 1), QUOTA_BACKOFF);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let delay = jittered(Duration::from_secs(100));
            assert!(
                (Duration::from_secs(90)..=Duration::from_secs(110)).contains(&delay),
                "{delay:?}"
            );
        }
    }
}
