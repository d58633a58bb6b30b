//! `cargo xtask history --explain <time>`: "when did it start acting strange?" answered from the records
//! that already exist: the rollouts around that time, every source-health transition (ingest runs failing,
//! recovering, turning partial or empty) and the push outcomes per hour with the hours where failures began or
//! ended, all in one window.

use serde::Serialize;
use sqlx::PgPool;

/// One ingest run, as `ingest.ingestion_run` records it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Run {
    pub source: String,
    pub finished_at: i64,
    pub outcome: String,
    pub error_class: Option<String>,
}

/// A source's health changing between two consecutive runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub at: i64,
    pub source: String,
    pub from: String,
    pub to: String,
    /// The failure's class when it turned `failed`.
    pub error_class: Option<String>,
    /// Runs spent in the previous state (counting from the window's start).
    pub after_runs: usize,
}

/// One hour of APNs delivery attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PushHour {
    /// The hour's start, unix seconds.
    pub hour: i64,
    pub attempts: i64,
    pub delivered: i64,
    /// Attempts that failed and left the alert to be retried.
    pub retried: i64,
    /// Alerts given up in that hour (`dead`, after the last attempt).
    pub dead: i64,
    /// Tokens APNs called unregistered (410).
    pub deactivated: i64,
    /// `failures began` or `failures ended` against the hour before.
    #[sqlx(skip)]
    pub change: Option<&'static str>,
}

/// The window around the asked time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: i64,
    pub until: i64,
}

/// Source-health transitions in `runs` (every source's runs, oldest first, starting with the last run before
/// the window so the first state is known).
pub fn transitions(runs: &[Run], window: Window) -> Vec<Transition> {
    let mut last: std::collections::BTreeMap<&str, (&str, usize)> = Default::default();
    let mut found = Vec::new();
    for run in runs {
        let state = last.entry(&run.source).or_insert((run.outcome.as_str(), 0));
        if state.0 != run.outcome && run.finished_at >= window.from {
            found.push(Transition {
                at: run.finished_at,
                source: run.source.clone(),
                from: state.0.to_owned(),
                to: run.outcome.clone(),
                error_class: run.error_class.clone(),
                after_runs: state.1,
            });
            *state = (run.outcome.as_str(), 0);
        }
        state.1 += 1;
    }
    found
}

/// Marks each hour where failed attempts appear after an hour without, or disappear after an hour with.
pub fn mark_changes(hours: &mut [PushHour]) {
    let mut failing_before: Option<bool> = None;
    for hour in hours.iter_mut() {
        let failing = hour.retried + hour.dead > 0;
        hour.change = match failing_before {
            Some(false) if failing => Some("failures began"),
            Some(true) if !failing => Some("failures ended"),
            _ => None,
        };
        failing_before = Some(failing);
    }
}

/// Every run of every source from the last one before the window to the window's end.
pub async fn runs(pool: &PgPool, window: Window) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(
        "with before as (
             select distinct on (source) run_id from ingest.ingestion_run
             where finished_at < to_timestamp($1) and outcome is not null
             order by source, finished_at desc
         )
         select source, extract(epoch from finished_at)::bigint as finished_at, outcome, error_class
         from ingest.ingestion_run
         where outcome is not null
           and (run_id in (select run_id from before)
                or finished_at >= to_timestamp($1) and finished_at < to_timestamp($2))
         order by finished_at, run_id",
    )
    .bind(window.from as f64)
    .bind(window.until as f64)
    .fetch_all(pool)
    .await
}

/// The push outcomes per hour of the window.
pub async fn push_hours(pool: &PgPool, window: Window) -> sqlx::Result<Vec<PushHour>> {
    let mut hours: Vec<PushHour> = sqlx::query_as(
        "with attempts as (
             select a.outbox_id, a.attempted_at, a.http_status, o.status,
                    a.attempt_id = max(a.attempt_id) over (partition by a.outbox_id) as last
             from push.delivery_attempt a join push.outbox o using (outbox_id)
             where a.attempted_at >= to_timestamp($1) and a.attempted_at < to_timestamp($2)
         )
         select extract(epoch from date_trunc('hour', attempted_at))::bigint as hour,
                count(*) as attempts,
                count(*) filter (where http_status = 200) as delivered,
                count(*) filter (where http_status is distinct from 200 and http_status is distinct from 410
                                       and not (last and status = 'dead')) as retried,
                count(*) filter (where last and status = 'dead') as dead,
                count(*) filter (where http_status = 410) as deactivated
         from attempts group by 1 order by 1",
    )
    .bind(window.from as f64)
    .bind(window.until as f64)
    .fetch_all(pool)
    .await?;
    mark_changes(&mut hours);
    Ok(hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: &str, at: i64, outcome: &str) -> Run {
        Run {
            source: source.to_owned(),
            finished_at: at,
            outcome: outcome.to_owned(),
            error_class: (outcome == "failed").then(|| "timeout".to_owned()),
        }
    }

    #[test]
    fn a_source_failing_and_recovering_is_two_transitions() {
        let runs = [
            run("parking_portal", 90, "ok"), // before the window: the starting state
            run("seoul_citydata", 95, "no_data"),
            run("parking_portal", 110, "ok"),
            run("parking_portal", 120, "failed"),
            run("parking_portal", 130, "failed"),
            run("seoul_citydata", 131, "ok"),
            run("parking_portal", 140, "ok"),
        ];
        let found = transitions(&runs, Window { from: 100, until: 200 });
        let summary: Vec<(i64, &str, &str, &str, usize)> = found
            .iter()
            .map(|t| (t.at, t.source.as_str(), t.from.as_str(), t.to.as_str(), t.after_runs))
            .collect();
        assert_eq!(
            summary,
            [
                (120, "parking_portal", "ok", "failed", 2),
                (131, "seoul_citydata", "no_data", "ok", 1),
                (140, "parking_portal", "failed", "ok", 2),
            ]
        );
        assert_eq!(found[0].error_class.as_deref(), Some("timeout"));
    }

    #[test]
    fn the_hour_failures_begin_and_end_is_marked() {
        let hour = |at: i64, retried: i64| PushHour {
            hour: at,
            attempts: 10,
            delivered: 10 - retried,
            retried,
            dead: 0,
            deactivated: 0,
            change: None,
        };
        let mut hours = [hour(0, 0), hour(3600, 4), hour(7200, 2), hour(10800, 0)];
        mark_changes(&mut hours);
        let changes: Vec<Option<&str>> = hours.iter().map(|hour| hour.change).collect();
        assert_eq!(changes, [None, Some("failures began"), None, Some("failures ended")]);
    }
}
