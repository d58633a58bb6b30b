//! Who calls which API version: every app request is counted by API version × app version, in `/metrics`
//! and, per UTC day, in `ops.api_usage_day`, which a background task adds to once a minute (never per
//! request) so "who still calls /v1?" has a record (`cargo xtask contracts usage`).
//!
//! Both use one bounded label: the [`UsageSettings::kept_app_versions`] most recent builds seen by name
//! (builds only increase on the App Store, so the greatest are the newest), every older one `other`, plus
//! `invalid` and `unknown` (see `app_version.rs`). A client inventing versions can therefore push real builds
//! into `other`, but never grow the metric or the table beyond that bound.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use contracts::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::{
    app_version::{AppVersion, Caller},
    metrics::Metrics,
};

/// How usage is counted and recorded.
#[derive(Clone, Debug, clap::Args)]
pub struct UsageSettings {
    /// How many of the most recent app builds are counted by name (in `/metrics` and
    /// `ops.api_usage_day`); older builds are counted as `other`.
    #[arg(long, env = "USAGE_KEPT_APP_VERSIONS", default_value_t = 20)]
    pub kept_app_versions: usize,

    /// How often the request counts are added to `ops.api_usage_day`.
    #[arg(long, env = "USAGE_FLUSH_SECONDS", default_value_t = 60)]
    pub usage_flush_seconds: u64,
}

impl Default for UsageSettings {
    fn default() -> Self {
        UsageSettings { kept_app_versions: 20, usage_flush_seconds: 60 }
    }
}

/// The API version a request is for, by its path: `/v1/…`, `/v2/…`, anything else (`/openapi/…`,
/// `/healthz`, unknown paths) `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    V1,
    V2,
    Other,
}

impl ApiVersion {
    const ALL: [ApiVersion; 3] = [ApiVersion::V1, ApiVersion::V2, ApiVersion::Other];

    pub fn of_path(path: &str) -> ApiVersion {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        match first {
            "v1" => ApiVersion::V1,
            "v2" => ApiVersion::V2,
            _ => ApiVersion::Other,
        }
    }

    /// As in paths, the schedule and `ops.api_usage_day.api_version`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
            ApiVersion::Other => "other",
        }
    }
}

/// Requests since the last flush for one day, API version and label.
#[derive(Clone, Copy, Debug)]
struct Pending {
    requests: i64,
    last_seen: i64,
}

/// A label as handed out: shared, so counting a request copies a pointer, not a string.
pub(crate) type Label = Arc<str>;

type PendingKey = (i64, ApiVersion, Label);

#[derive(Debug)]
struct Counts {
    /// The builds counted by name, at most `capacity`, each with its label.
    kept: BTreeMap<AppVersion, Label>,
    pending: HashMap<PendingKey, Pending>,
    other: Label,
    invalid: Label,
    unknown: Label,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            kept: BTreeMap::new(),
            pending: HashMap::new(),
            other: "other".into(),
            invalid: "invalid".into(),
            unknown: "unknown".into(),
        }
    }
}

/// The request counts of this process: labels handed out, metrics incremented, daily counts not yet written.
#[derive(Debug)]
pub struct Usage {
    capacity: usize,
    metrics: Metrics,
    /// One lock for the kept builds, the metric and the pending counts: a build pushed out folds its series
    /// into `other` with no increment slipping in between.
    counts: Mutex<Counts>,
}

impl Usage {
    pub fn new(settings: &UsageSettings, metrics: Metrics) -> Usage {
        Usage { capacity: settings.kept_app_versions, metrics, counts: Mutex::default() }
    }

    /// Counts one request of `api_version` from `caller` at `now`.
    pub fn record(&self, api_version: ApiVersion, caller: &Caller, now: Timestamp) {
        let mut counts = self.counts.lock().expect("lock is never poisoned");
        let label = match caller {
            Caller::App(version) => self.label(&mut counts, version),
            Caller::Invalid => counts.invalid.clone(),
            Caller::Unknown => counts.unknown.clone(),
        };
        self.metrics.app_request(api_version.as_str(), &label);
        let seconds = now.as_unix_seconds();
        let pending = counts
            .pending
            .entry((seconds.div_euclid(86_400), api_version, label))
            .or_insert(Pending { requests: 0, last_seen: seconds });
        pending.requests += 1;
        pending.last_seen = pending.last_seen.max(seconds);
    }

    /// The build's own label when it is among the most recent seen (admitting it, and pushing the oldest
    /// kept one out, when it is newer than that), else `other`.
    fn label(&self, counts: &mut Counts, version: &AppVersion) -> Label {
        if let Some(label) = counts.kept.get(version) {
            return label.clone();
        }
        if counts.kept.len() >= self.capacity {
            let oldest_is_newer =
                counts.kept.first_key_value().is_none_or(|(oldest, _)| oldest >= version);
            if oldest_is_newer {
                return counts.other.clone();
            }
            if let Some((_, oldest)) = counts.kept.pop_first() {
                let names = ApiVersion::ALL.map(ApiVersion::as_str);
                self.metrics.fold_app_version_into_other(&names, &oldest, &counts.other);
            }
        }
        let label: Label = version.to_string().into();
        counts.kept.insert(version.clone(), label.clone());
        label
    }

    /// Adds the counts since the last flush to `ops.api_usage_day` in one statement; on failure they are
    /// kept for the next one (bounded: one entry per day, API version and label). Returns the rows written.
    pub async fn flush(&self, db: &sqlx::PgPool) -> anyhow::Result<usize> {
        let pending =
            std::mem::take(&mut self.counts.lock().expect("lock is never poisoned").pending);
        if pending.is_empty() {
            return Ok(0);
        }
        let rows = pending.len();
        let (mut days, mut api_versions, mut labels, mut requests, mut last_seen) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((day, api_version, label), counted) in &pending {
            days.push(*day);
            api_versions.push(api_version.as_str());
            labels.push(&**label);
            requests.push(counted.requests);
            last_seen.push(counted.last_seen);
        }
        // Every replica adds its own counts, so the upsert adds instead of setting.
        let written = sqlx::query(
            "insert into ops.api_usage_day (day, api_version, app_version, requests, last_seen_at)
             select date '1970-01-01' + day::integer, api_version, app_version, requests, to_timestamp(last_seen)
             from unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
                  as counted (day, api_version, app_version, requests, last_seen)
             on conflict (day, api_version, app_version) do update
             set requests = api_usage_day.requests + excluded.requests,
                 last_seen_at = greatest(api_usage_day.last_seen_at, excluded.last_seen_at)",
        )
        .bind(&days)
        .bind(&api_versions)
        .bind(&labels)
        .bind(&requests)
        .bind(&last_seen)
        .execute(db)
        .await
        .context("failed to add request counts to ops.api_usage_day");
        if let Err(error) = written {
            let mut counts = self.counts.lock().expect("lock is never poisoned");
            for (key, counted) in pending {
                let kept = counts.pending.entry(key).or_insert(Pending { requests: 0, ..counted });
                kept.requests += counted.requests;
                kept.last_seen = kept.last_seen.max(counted.last_seen);
            }
            return Err(error);
        }
        Ok(rows)
    }
}

/// Flushes `usage` every `interval` until `shutdown`, then once more so a rollout loses no counts. A failed
/// flush is logged and retried with the next one: the record is never a reason not to serve.
pub async fn flush_periodically(
    usage: std::sync::Arc<Usage>,
    db: sqlx::PgPool,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => break,
        }
        if let Err(error) = usage.flush(&db).await {
            tracing::warn!(error = format!("{error:#}"), "request counts not recorded yet");
        }
    }
    let last = tokio::time::timeout(Duration::from_secs(2), usage.flush(&db)).await;
    if !matches!(last, Ok(Ok(_))) {
        tracing::warn!("the last request counts could not be recorded before shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_api_version() {
        assert_eq!(ApiVersion::of_path("/v1/home-summary"), ApiVersion::V1);
        assert_eq!(ApiVersion::of_path("/v2/parks/yeouido"), ApiVersion::V2);
        assert_eq!(ApiVersion::of_path("/v2"), ApiVersion::V2);
        assert_eq!(ApiVersion::of_path("/v20/parks"), ApiVersion::Other);
        assert_eq!(ApiVersion::of_path("/openapi/v1.json"), ApiVersion::Other);
        assert_eq!(ApiVersion::of_path("/"), ApiVersion::Other);
    }
}
