//! Which builds call: requests counted by API version × app build in `/metrics` (bounded) and per day in
//! `ops.api_usage_day` (flushed in batches), and the retirement headers a scheduled version's responses carry.

use api::{retirement::RetirementSettings, usage::UsageSettings};
use axum::http::Method;
use contracts::retirement::Schedule;

use crate::app::{T0, TestApp};

const IOS_431: &str = "Hangangjari/431 CFNetwork/1494.0.7 Darwin/23.4.0";

async fn call(app: &TestApp, path: &str, headers: &[(&str, &str)]) {
    app.request(Method::GET, path, headers, None).await;
}

/// The `hangang_api_app_requests_total` samples of `/metrics`: (api version, app version, count).
async fn app_request_samples(app: &TestApp) -> Vec<(String, String, u64)> {
    let metrics = String::from_utf8(app.admin("/metrics").await.raw).unwrap();
    let mut samples: Vec<(String, String, u64)> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("hangang_api_app_requests_total{"))
        .map(|line| {
            let (labels, count) = line.split_once("} ").unwrap();
            let label = |name: &str| {
                let start = labels.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                labels[start..].split('"').next().unwrap().to_owned()
            };
            (label("api_version"), label("app_version"), count.parse().unwrap())
        })
        .collect();
    samples.sort();
    samples
}

fn sample(api: &str, app: &str, count: u64) -> (String, String, u64) {
    (api.to_owned(), app.to_owned(), count)
}

#[tokio::test]
async fn the_metric_names_the_most_recent_builds_and_counts_the_rest_as_other() {
    let mut app = TestApp::spawn().await;
    let settings = UsageSettings { kept_app_versions: 2, ..UsageSettings::default() };
    app.state = app.state.clone().with_usage(&settings);
    call(&app, "/v2/status", &[("x-app-version", "2.3.0 (420)")]).await;
    call(&app, "/v1/home-summary", &[("x-app-version", "2.3.0 (420)")]).await;
    call(&app, "/v2/status", &[("user-agent", IOS_431)]).await;
    // A third, newer build pushes the oldest kept one (420) into `other`, its counts with it.
    call(&app, "/v2/status", &[("x-app-version", "2.4.0 (431)")]).await;
    // Older than every kept build: `other` from the start.
    call(&app, "/v1/home-summary", &[("x-app-version", "2.2.0 (410)")]).await;
    call(&app, "/v2/status", &[("x-app-version", "2.4.0 431")]).await;
    call(&app, "/v2/parks", &[("user-agent", "Hangangjari/431 CFNetwork/1494.0.7")]).await;
    call(&app, "/openapi/v2.json", &[("user-agent", "curl/8.5.0")]).await;
    for _ in 0..3 {
        call(&app, "/v2/status", &[("x-app-version", "2.4.0 (431)")]).await;
    }
    assert_eq!(
        app_request_samples(&app).await,
        [
            sample("other", "unknown", 1),
            sample("v1", "other", 2),
            sample("v2", "2.4.0 (431)", 4),
            sample("v2", "build 431", 1),
            sample("v2", "invalid", 2),
            sample("v2", "other", 1),
        ]
    );
    // However many versions clients invent, the labels stay bounded: two builds, other, invalid, unknown.
    for build in 500..600 {
        let header = format!("9.0.0 ({build})");
        call(&app, "/v2/status", &[("x-app-version", &header)]).await;
    }
    let samples = app_request_samples(&app).await;
    let labels: std::collections::BTreeSet<&str> =
        samples.iter().map(|(_, label, _)| label.as_str()).collect();
    assert_eq!(labels.len(), 5, "{labels:?}");
    assert!(labels.contains("9.0.0 (599)") && labels.contains("9.0.0 (598)"), "{labels:?}");
    let v2_total: u64 =
        samples.iter().filter(|(api, _, _)| api == "v2").map(|(_, _, count)| count).sum();
    assert_eq!(v2_total, 108, "folding into `other` loses no request");
    app.cleanup().await;
}

async fn usage_rows(app: &TestApp) -> Vec<(String, String, String, i64)> {
    sqlx::query_as(
        "select day::text, api_version, app_version, requests from ops.api_usage_day
         order by day, api_version, app_version",
    )
    .fetch_all(&app.database.pool)
    .await
    .unwrap()
}

fn row(day: &str, api: &str, app: &str, requests: i64) -> (String, String, String, i64) {
    (day.to_owned(), api.to_owned(), app.to_owned(), requests)
}

#[tokio::test]
async fn daily_counts_are_added_to_the_table_in_batches() {
    let app = TestApp::spawn().await;
    // T0 is 2026-06-14T08:20:00Z.
    for _ in 0..3 {
        call(&app, "/v1/home-summary", &[("user-agent", IOS_431)]).await;
    }
    call(&app, "/v2/status", &[("x-app-version", "2.4.0 (431)")]).await;
    assert!(usage_rows(&app).await.is_empty(), "nothing is written per request");
    assert_eq!(app.state.usage.flush(&app.database.pool).await.unwrap(), 2);
    assert_eq!(
        usage_rows(&app).await,
        [row("2026-06-14", "v1", "build 431", 3), row("2026-06-14", "v2", "2.4.0 (431)", 1)]
    );
    // Another replica's counts (or this one's next minute) add to the same day's rows.
    let other_replica = app.state.clone().with_usage(&UsageSettings::default());
    call(&app, "/v1/home-summary", &[("user-agent", IOS_431)]).await;
    other_replica.usage.record(
        api::usage::ApiVersion::V1,
        &api::app_version::Caller::App(
            api::app_version::AppVersion::parse_user_agent(IOS_431).unwrap(),
        ),
        app.state.now(),
    );
    // The next UTC day is a row of its own.
    app.clock.advance(86_400 - (T0 % 86_400));
    call(&app, "/v1/home-summary", &[("user-agent", "Hangangjari/bad")]).await;
    app.state.usage.flush(&app.database.pool).await.unwrap();
    other_replica.usage.flush(&app.database.pool).await.unwrap();
    assert_eq!(app.state.usage.flush(&app.database.pool).await.unwrap(), 0, "nothing left");
    assert_eq!(
        usage_rows(&app).await,
        [
            row("2026-06-14", "v1", "build 431", 5),
            row("2026-06-14", "v2", "2.4.0 (431)", 1),
            row("2026-06-15", "v1", "invalid", 1),
        ]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn counts_that_cannot_be_written_are_kept_for_the_next_flush() {
    let app = TestApp::spawn().await;
    call(&app, "/v1/home-summary", &[("user-agent", IOS_431)]).await;
    app.execute("alter table ops.api_usage_day rename to api_usage_day_elsewhere").await;
    assert!(app.state.usage.flush(&app.database.pool).await.is_err());
    app.execute("alter table ops.api_usage_day_elsewhere rename to api_usage_day").await;
    call(&app, "/v1/home-summary", &[("user-agent", IOS_431)]).await;
    app.state.usage.flush(&app.database.pool).await.unwrap();
    assert_eq!(usage_rows(&app).await, [row("2026-06-14", "v1", "build 431", 2)]);
    app.cleanup().await;
}

#[tokio::test]
async fn a_version_scheduled_for_retirement_says_so_on_every_response() {
    let mut app = TestApp::spawn().await;
    let schedule = Schedule::parse(
        "v1 deprecation=2026-12-01T00:00:00Z sunset=2027-03-31T15:00:00Z \
         link=https://hangangjari.app/docs/api/v1-sunset",
    )
    .unwrap();
    app.state = app.state.clone().with_retirement(&RetirementSettings { api_retirement: schedule });
    for path in ["/v1/home-summary", "/v1/no-such-route"] {
        let response = app.get(path).await;
        let header =
            |name: &str| response.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header("deprecation").as_deref(), Some("@1796083200"), "{path}");
        assert_eq!(header("sunset").as_deref(), Some("Wed, 31 Mar 2027 15:00:00 GMT"), "{path}");
        assert_eq!(
            header("link").as_deref(),
            Some("<https://hangangjari.app/docs/api/v1-sunset>; rel=\"sunset\""),
            "{path}"
        );
    }
    for path in ["/v2/status", "/openapi/v1.json", "/healthz"] {
        let response = app.get(path).await;
        assert!(response.headers.get("sunset").is_none(), "{path}");
        assert!(response.headers.get("deprecation").is_none(), "{path}");
    }
    app.cleanup().await;
}
