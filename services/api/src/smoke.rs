//! `hangang-api smoke`: proves that a deployed release works, for Argo CD's PostSync Job and for people.
//!
//! Passing means: every service answers `/healthz` with the expected `RELEASE_ID` (so a pod of the previous
//! ReplicaSet still answering does not count, argo-cd#17408; a service whose image the release left alone is not
//! restarted and answers with its image's release, which `SMOKE_EXPECT_RELEASES` names), every source the api reports is fresh, and a core
//! route returns a body that parses as the v2 contract. A rollout converges over a minute or two, so the checks
//! are retried until a deadline; the last round's report is printed either way. With `DATABASE_URL` the outcome
//! is also recorded in `ops.smoke_run` (every check with its duration, the release each service answered with),
//! the record the release ledger and promotion read.

use std::{collections::BTreeMap, fmt, time::Duration};

use contracts::{Timestamp, freshness::FreshnessState, v2};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

/// Options of `hangang-api smoke`.
#[derive(Clone, Debug, clap::Args)]
pub struct SmokeConfig {
    /// Base URL of the api.
    #[arg(long, env = "SMOKE_API_URL", default_value = "http://hangang-api:8080")]
    pub api_url: String,

    /// Base URL of the api's admin listener, where `/healthz` reports its release.
    #[arg(long, env = "SMOKE_API_ADMIN_URL", default_value = "http://hangang-api:9090")]
    pub api_admin_url: String,

    /// A worker's admin base URL as `name=url` (e.g. `push=http://hangang-push:9090`); repeat for each worker.
    #[arg(long = "worker-url", value_parser = parse_worker)]
    pub workers: Vec<Worker>,

    /// Sources allowed not to be fresh, because this environment does not collect them (e.g. `weather` without
    /// a KMA key). Repeatable.
    #[arg(long = "allow-stale-source")]
    pub allow_stale_sources: Vec<String>,

    /// Give up after this many seconds of failing rounds.
    #[arg(long, default_value_t = 300)]
    pub deadline_seconds: u64,

    /// Pause between rounds, in seconds.
    #[arg(long, default_value_t = 5)]
    pub retry_seconds: u64,

    /// The release a service must answer with, as `service=release` (comma-separated in the environment); a
    /// service not named must answer with this process's `RELEASE_ID`. The release kustomization sets it to each
    /// image's release, since a release that leaves an image alone does not restart that service.
    #[arg(long = "expect-release", env = "SMOKE_EXPECT_RELEASES", value_delimiter = ',', value_parser = parse_expected)]
    pub expect_releases: Vec<Expected>,

    /// The release whose desired state this check proves, as recorded in `ops.smoke_run` (the release
    /// kustomization sets it; a promotion looks for a passing run of the release it promotes). Default: this
    /// process's `RELEASE_ID`, which differs when the release left the api's image alone.
    #[arg(long, env = "SMOKE_DESIRED_RELEASE")]
    pub desired_release: Option<String>,

    /// Where to record the outcome (`ops.smoke_run`); without it the outcome is only printed.
    #[arg(long, env = "DATABASE_URL", value_parser = settings::DATABASE_URL)]
    pub database_url: Option<settings::ConnectionUrl>,

    #[command(flatten)]
    pub common: settings::CommonSettings,
}

/// Why a check failed, as its line says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

/// A [`Failed`] with a formatted message.
macro_rules! failed {
    ($($message:tt)*) => {
        Failed(format!($($message)*))
    };
}

/// The release one service must answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub service: String,
    pub release_id: String,
}

fn parse_expected(value: &str) -> Result<Expected, Failed> {
    match value.split_once('=') {
        Some((service, release_id)) if !service.is_empty() && !release_id.is_empty() => {
            Ok(Expected { service: service.to_owned(), release_id: release_id.to_owned() })
        }
        _ => Err(failed!("expected service=release, got `{value}`")),
    }
}

impl SmokeConfig {
    /// The release `service` must answer with.
    pub fn expected_release(&self, service: &str) -> &str {
        self.expect_releases
            .iter()
            .find(|expected| expected.service == service)
            .map_or(self.common.release_id.as_str(), |expected| expected.release_id.as_str())
    }
}

/// A worker to check: its name and admin base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worker {
    pub name: String,
    pub url: String,
}

fn parse_worker(value: &str) -> Result<Worker, Failed> {
    match value.split_once('=') {
        Some((name, url)) if !name.is_empty() && url.starts_with("http") => {
            Ok(Worker { name: name.to_owned(), url: url.trim_end_matches('/').to_owned() })
        }
        _ => Err(failed!("expected name=http://host:port, got `{value}`")),
    }
}

/// One check's outcome in a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    pub duration: Duration,
}

/// One round of checks.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
    /// The release each service reported (`api`, `ingest`, …), when it answered at all.
    pub answered: BTreeMap<String, String>,
    /// How many rounds ran until this one (1 when the first passed).
    pub rounds: u32,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }

    /// Runs `check` and records its outcome and duration as `name`.
    async fn check(
        &mut self,
        name: impl Into<String>,
        check: impl Future<Output = Result<String, Failed>>,
    ) {
        let started = Instant::now();
        let outcome = check.await;
        self.push(name, outcome, started.elapsed());
    }

    fn push(
        &mut self,
        name: impl Into<String>,
        outcome: Result<String, Failed>,
        duration: Duration,
    ) {
        let (passed, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(Failed(detail)) => (false, detail),
        };
        self.checks.push(Check { name: name.into(), passed, detail, duration });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.checks.iter().map(|check| check.name.len()).max().unwrap_or(0);
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            let ms = check.duration.as_millis();
            writeln!(f, "{mark} {:<width$}  {ms:>5} ms  {}", check.name, check.detail)?;
        }
        Ok(())
    }
}

/// Runs rounds until one passes or the deadline passes; returns the last round.
pub async fn run(config: &SmokeConfig) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .user_agent(concat!("hangang-api-smoke/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(config.deadline_seconds);
    let mut round = 1;
    loop {
        let mut report = check_once(&client, config).await;
        report.rounds = round;
        if report.passed() || Instant::now() >= deadline {
            return Ok(report);
        }
        let failing: Vec<_> = report
            .checks
            .iter()
            .filter(|check| !check.passed)
            .map(|check| check.name.as_str())
            .collect();
        tracing::info!(round, failing = ?failing, "smoke round failed; retrying");
        round += 1;
        tokio::time::sleep(Duration::from_secs(config.retry_seconds)).await;
    }
}

/// One round: every check, none short-circuiting the others, so the report shows everything wrong at once.
pub async fn check_once(client: &reqwest::Client, config: &SmokeConfig) -> Report {
    let api = config.api_url.trim_end_matches('/');
    let mut report = Report::default();
    let mut targets = vec![("api", config.api_admin_url.trim_end_matches('/'))];
    targets.extend(config.workers.iter().map(|worker| (worker.name.as_str(), worker.url.as_str())));
    for (service, base) in targets {
        let started = Instant::now();
        let answered = health(client, base).await;
        let outcome = answered.clone().and_then(|reported| {
            report.answered.insert(service.to_owned(), reported.clone());
            same_release(service, &reported, config.expected_release(service))
        });
        report.push(format!("{service} /healthz"), outcome, started.elapsed());
    }
    let started = Instant::now();
    let status = get_json::<v2::Status>(client, &format!("{api}/v2/status")).await;
    let fetched = started.elapsed();
    report.push(
        "api /v2/status release",
        status.as_ref().map_err(Clone::clone).and_then(|status| {
            same_release("api", &status.release_id, config.expected_release("api"))
        }),
        fetched,
    );
    report.push(
        "sources fresh",
        status.and_then(|status| sources_fresh(&status, &config.allow_stale_sources)),
        fetched,
    );
    report
        .check("api /v2/home-summary", async {
            let summary =
                get_json::<v2::HomeSummary>(client, &format!("{api}/v2/home-summary")).await?;
            match summary.parks.len() {
                0 => Err(failed!("valid v2 body, but no parks")),
                parks => Ok(format!(
                    "valid v2 body, {parks} parks, served from {}",
                    summary.served_from.as_str()
                )),
            }
        })
        .await;
    report
}

/// The release a service reports on `/healthz`, when it answers `ok`.
async fn health(client: &reqwest::Client, base: &str) -> Result<String, Failed> {
    let body = get_json::<serde_json::Value>(client, &format!("{base}/healthz")).await?;
    if body["status"] != "ok" {
        return Err(failed!("status is {}", body["status"]));
    }
    Ok(body["release_id"].as_str().unwrap_or("(none)").to_owned())
}

/// Records `report` (a smoke check of `release_id` in `common`'s environment, begun at `started_at`) in
/// `ops.smoke_run`.
pub async fn record(
    pool: &sqlx::PgPool,
    common: &settings::CommonSettings,
    release_id: &str,
    report: &Report,
    started_at: Timestamp,
) -> sqlx::Result<()> {
    let run = db::ops::SmokeRun {
        id: None,
        release_id: release_id.to_owned(),
        environment: common.environment.clone(),
        started_at,
        finished_at: Timestamp::now(),
        passed: report.passed(),
        rounds: report.rounds,
        checks: report
            .checks
            .iter()
            .map(|check| db::ops::SmokeCheck {
                name: check.name.clone(),
                passed: check.passed,
                detail: check.detail.clone(),
                duration_ms: u64::try_from(check.duration.as_millis()).unwrap_or(u64::MAX),
            })
            .collect(),
        answered: report.answered.clone(),
    };
    db::ops::record_smoke_run(pool, &run, common.ops_retention_days).await
}

fn same_release(service: &str, reported: &str, expected: &str) -> Result<String, Failed> {
    if reported == expected {
        Ok(format!("release {reported}"))
    } else {
        Err(failed!(
            "{service} reports release {reported}, expected {expected} (an old pod is answering)"
        ))
    }
}

/// Every source the api knows about is fresh, except those this environment does not collect.
pub fn sources_fresh(status: &v2::Status, allowed_stale: &[String]) -> Result<String, Failed> {
    let not_fresh: Vec<String> = status
        .sources
        .iter()
        .filter(|source| source.state != FreshnessState::Fresh)
        .filter(|source| !allowed_stale.iter().any(|allowed| allowed == source.source.as_str()))
        .map(|source| {
            let (name, state) = (source.source.as_str(), source.state.as_str());
            format!("{name} is {state} (source {})", source.source_status.as_str())
        })
        .collect();
    if status.sources.is_empty() {
        return Err(failed!("the api reports no sources"));
    }
    if not_fresh.is_empty() {
        let fresh =
            status.sources.iter().filter(|source| source.state == FreshnessState::Fresh).count();
        let excused = status.sources.len() - fresh;
        Ok(if excused == 0 {
            format!("{fresh} sources within their thresholds")
        } else {
            format!("{fresh} sources within their thresholds, {excused} allowed not to be")
        })
    } else {
        Err(Failed(not_fresh.join("; ")))
    }
}

/// GETs `url` and parses the body as `T`, with a readable error for each way that can fail.
async fn get_json<T: DeserializeOwned>(client: &reqwest::Client, url: &str) -> Result<T, Failed> {
    let response = client.get(url).send().await.map_err(|error| failed!("GET {url}: {error}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|error| failed!("GET {url}: {error}"))?;
    if !status.is_success() {
        return Err(failed!("GET {url}: HTTP {status}"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        failed!("GET {url}: not a valid body at `{}`: {}", error.path(), error.inner())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_urls_need_a_name_and_a_url() {
        assert_eq!(
            parse_worker("push=http://hangang-push:9090/").unwrap(),
            Worker { name: "push".into(), url: "http://hangang-push:9090".into() }
        );
        assert!(parse_worker("http://hangang-push:9090").is_err());
        assert!(parse_worker("push=hangang-push").is_err());
    }

    #[test]
    fn each_service_may_be_expected_at_its_own_release() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            smoke: SmokeConfig,
        }
        let cli = Cli::try_parse_from([
            "smoke",
            "--release-id",
            "R2",
            "--expect-release",
            "ingest=R1,push=R0",
        ])
        .unwrap();
        assert_eq!(cli.smoke.expected_release("ingest"), "R1");
        assert_eq!(cli.smoke.expected_release("push"), "R0");
        assert_eq!(cli.smoke.expected_release("api"), "R2", "unnamed: this process's release");
        assert!(parse_expected("ingest").is_err());
    }

    #[test]
    fn a_stale_source_fails_unless_allowed() {
        use contracts::Example;
        let mut status = v2::Status::example();
        for source in &mut status.sources {
            source.state = FreshnessState::Fresh;
        }
        assert!(sources_fresh(&status, &[]).is_ok());
        status.sources[0].state = FreshnessState::Stale;
        let stale = status.sources[0].source.as_str().to_owned();
        let error = sources_fresh(&status, &[]).unwrap_err();
        assert!(error.0.starts_with(&format!("{stale} is stale")), "{error}");
        assert!(sources_fresh(&status, &[stale]).is_ok());
    }
}
