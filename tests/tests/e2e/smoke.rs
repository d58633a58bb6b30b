//! `hangang-api smoke` against the whole system: it passes on a healthy release and fails, naming the
//! service, when a pod of another release answers.

use api::smoke::{SmokeConfig, Worker};
use settings::CommonSettings;
use tests::{ENVIRONMENT, RELEASE_ID, Sandbox};

fn config(sandbox: &Sandbox, expected_release: &str, deadline_seconds: u64) -> SmokeConfig {
    SmokeConfig {
        api_url: format!("http://{}", sandbox.api_http),
        api_admin_url: format!("http://{}", sandbox.api_admin),
        workers: sandbox
            .workers
            .iter()
            .map(|worker| Worker {
                name: worker.name.to_owned(),
                url: format!("http://{}", worker.admin),
            })
            .collect(),
        allow_stale_sources: Vec::new(),
        deadline_seconds,
        retry_seconds: 1,
        expect_releases: Vec::new(),
        desired_release: None,
        database_url: None,
        common: CommonSettings {
            release_id: expected_release.to_owned(),
            log_filter: "warn".to_owned(),
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn a_healthy_release_passes_once_its_sources_are_fresh() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let report = api::smoke::run(&config(&sandbox, RELEASE_ID, 30)).await?;
    assert!(report.passed(), "{report}");
    let names: Vec<_> = report.checks.iter().map(|check| check.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "api /healthz",
            "ingest /healthz",
            "forecast /healthz",
            "push /healthz",
            "api /v2/status release",
            "sources fresh",
            "api /v2/home-summary"
        ]
    );
    sandbox.stop().await
}

#[tokio::test]
async fn another_release_answering_fails_with_its_name() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let report = api::smoke::run(&config(&sandbox, "2026.11.27-2-next", 0)).await?;
    assert!(!report.passed());
    let failed: Vec<_> = report
        .checks
        .iter()
        .filter(|check| !check.passed)
        .map(|check| check.name.as_str())
        .collect();
    // Freshness may not have settled in a zero-deadline round; the release checks must all fail regardless.
    assert_eq!(
        failed[..5],
        [
            "api /healthz",
            "ingest /healthz",
            "forecast /healthz",
            "push /healthz",
            "api /v2/status release"
        ]
    );
    let api = &report.checks[0];
    assert_eq!(
        api.detail,
        "api reports release sandbox-release, expected 2026.11.27-2-next (an old pod is answering)"
    );
    sandbox.stop().await
}

#[tokio::test]
async fn the_outcome_is_recorded_with_every_check_and_the_release_each_service_answered()
-> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut config = config(&sandbox, RELEASE_ID, 30);
    config.common.environment = ENVIRONMENT.to_owned();
    let started_at = contracts::Timestamp::now();
    let report = api::smoke::run(&config).await?;
    assert!(report.passed(), "{report}");
    api::smoke::record(sandbox.database(), &config.common, RELEASE_ID, &report, started_at).await?;

    let rollouts = db::ops::rollouts(sandbox.database()).await?;
    let [run] = rollouts.smoke_runs.as_slice() else { panic!("{rollouts:?}") };
    assert!(run.id.is_some(), "a promotion names the record by its id");
    assert_eq!((run.release_id.as_str(), run.environment.as_str()), (RELEASE_ID, ENVIRONMENT));
    assert!(run.passed);
    assert!(run.rounds >= 1);
    assert!(run.started_at <= run.finished_at);
    assert_eq!(run.checks.len(), report.checks.len());
    assert!(run.checks.iter().all(|check| check.passed), "{:?}", run.checks);
    let answered: Vec<(&str, &str)> = run
        .answered
        .iter()
        .map(|(service, release)| (service.as_str(), release.as_str()))
        .collect();
    assert_eq!(
        answered,
        [
            ("api", RELEASE_ID),
            ("forecast", RELEASE_ID),
            ("ingest", RELEASE_ID),
            ("push", RELEASE_ID)
        ]
    );
    sandbox.stop().await
}
