//! `GET /v2/config`: the features file's answer per calling build and installation, and a changed file
//! taking effect without a restart (a refused one leaving the last good one in force).

use std::{path::PathBuf, sync::Arc, time::Duration};

use api::features::{FeatureSettings, Reload};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::app::{TestApp, TestResponse};

const FILE: &str = r#"
minimum_supported_build = "400"
recommended_build = "431"

[switches.lot_forecast_card]
default = false
rules = [
  { builds = { before = "431" }, enabled = false },
  { percent = 25, enabled = true },
]

[switches.park_events_tab]
default = false
rules = [{ versions = { from = "2.5" }, enabled = true }]

[switches.legacy_widget_layout]
default = true
rules = [{ builds = { from = "431" }, enabled = false }]
"#;

const OLD: &str = "2.3.0 (420)";
const NEW: &str = "2.5.0 (431)";
/// Buckets of `lot_forecast_card` (SHA-256 of the name, a NUL and the id, computed independently): 8 is in
/// a 25 % rollout, 66 is not.
const IN_ROLLOUT: &str = "inst-2";
const OUT_OF_ROLLOUT: &str = "inst-1";

fn features_path(app: &TestApp) -> PathBuf {
    std::env::temp_dir().join(format!("{}-features.toml", app.database.name))
}

async fn app_with(file: &str, reload_seconds: u64) -> (TestApp, PathBuf) {
    let mut app = TestApp::spawn().await;
    let path = features_path(&app);
    std::fs::write(&path, file).unwrap();
    let settings = FeatureSettings {
        features_file: Some(path.clone()),
        features_reload_seconds: reload_seconds,
    };
    app.state = app.state.clone().with_features(&settings).unwrap();
    (app, path)
}

async fn config(app: &TestApp, query: &str, app_version: Option<&str>) -> TestResponse {
    let headers: Vec<(&str, &str)> =
        app_version.map(|version| ("x-app-version", version)).into_iter().collect();
    app.request(Method::GET, &format!("/v2/config{query}"), &headers, None).await
}

fn switches(response: &TestResponse) -> Value {
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.body["switches"].clone()
}

#[tokio::test]
async fn each_build_gets_its_own_switches() {
    let (app, path) = app_with(FILE, 5).await;

    let old = config(&app, &format!("?installation_id={IN_ROLLOUT}"), Some(OLD)).await;
    assert_eq!(
        old.body,
        json!({
            "generated_at": "2026-06-14T08:20:00Z",
            "valid_until": "2026-06-14T08:35:00Z",
            "minimum_supported_build": "400",
            "recommended_build": "431",
            "switches": {
                "legacy_widget_layout": true,
                "lot_forecast_card": false,
                "park_events_tab": false,
            },
        })
    );
    let new = config(&app, &format!("?installation_id={IN_ROLLOUT}"), Some(NEW)).await;
    assert_eq!(
        switches(&new),
        json!({"legacy_widget_layout": false, "lot_forecast_card": true, "park_events_tab": true})
    );
    assert_eq!(new.body["minimum_supported_build"], "400");
    assert!(new.headers["vary"].to_str().unwrap().contains("x-app-version"));
    assert_eq!(new.headers["cache-control"], "no-cache");

    // The percentage: another installation on the same build is outside it, and without an id no
    // percentage rule applies.
    let out = config(&app, &format!("?installation_id={OUT_OF_ROLLOUT}"), Some(NEW)).await;
    assert_eq!(switches(&out)["lot_forecast_card"], false);
    let anonymous = config(&app, "", Some(NEW)).await;
    assert_eq!(switches(&anonymous)["lot_forecast_card"], false);
    assert_eq!(
        switches(&config(&app, &format!("?installation_id={IN_ROLLOUT}"), Some(NEW)).await),
        switches(&new),
        "the same installation stays in"
    );

    // The User-Agent names only the build: build rules apply, version rules do not.
    let agent = app
        .request(
            Method::GET,
            "/v2/config",
            &[("user-agent", "Hangangjari/431 CFNetwork/1494.0.7 Darwin/23.4.0")],
            None,
        )
        .await;
    assert_eq!(
        switches(&agent),
        json!({"legacy_widget_layout": false, "lot_forecast_card": false, "park_events_tab": false})
    );
    // Not the app (or an unparsable header): only defaults.
    for headers in [vec![], vec![("x-app-version", "2.5.0")]] {
        let response = app.request(Method::GET, "/v2/config", &headers, None).await;
        assert_eq!(
            switches(&response),
            json!({"legacy_widget_layout": true, "lot_forecast_card": false, "park_events_tab": false})
        );
    }

    let bad = config(&app, "?installation_id=not%20an%20id", Some(NEW)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    std::fs::remove_file(path).unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn a_changed_file_changes_the_answer_and_a_broken_one_keeps_the_last_good() {
    let (app, path) = app_with(FILE, 5).await;
    assert_eq!(app.state.features.reload().await, Reload::Unchanged);
    assert_eq!(switches(&config(&app, "", Some(NEW)).await)["park_events_tab"], true);

    let turned_off = FILE
        .replace(
            r#"{ versions = { from = "2.5" }, enabled = true }"#,
            r#"{ versions = { from = "2.6" }, enabled = true }"#,
        )
        .replace(r#"minimum_supported_build = "400""#, r#"minimum_supported_build = "425""#);
    std::fs::write(&path, &turned_off).unwrap();
    assert_eq!(app.state.features.reload().await, Reload::Applied);
    let changed = config(&app, "", Some(NEW)).await;
    assert_eq!(switches(&changed)["park_events_tab"], false);
    assert_eq!(changed.body["minimum_supported_build"], "425");

    // A typo: refused once, logged and counted, and the last good file still answers.
    std::fs::write(&path, turned_off.replace("default = false", "default = flase")).unwrap();
    assert_eq!(app.state.features.reload().await, Reload::Refused);
    assert_eq!(app.state.features.reload().await, Reload::Unchanged);
    let kept = config(&app, "", Some(NEW)).await;
    assert_eq!(kept.body["minimum_supported_build"], "425");
    assert_eq!(switches(&kept), switches(&changed));
    let metrics = String::from_utf8(app.admin("/metrics").await.raw).unwrap();
    assert!(
        metrics.contains(r#"hangang_api_features_reloads_total{outcome="refused"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"hangang_api_features_reloads_total{outcome="applied"} 1"#));

    std::fs::remove_file(&path).unwrap();
    assert_eq!(app.state.features.reload().await, Reload::Unreadable);
    assert_eq!(config(&app, "", Some(NEW)).await.body["minimum_supported_build"], "425");
    app.cleanup().await;
}

#[tokio::test]
async fn the_running_api_picks_up_a_change_by_itself() {
    let (app, path) = app_with(FILE, 1).await;
    let shutdown = CancellationToken::new();
    let reloader = tokio::spawn(api::features::reload_periodically(
        Arc::clone(&app.state.features),
        shutdown.clone(),
    ));
    assert_eq!(config(&app, "", Some(OLD)).await.body["recommended_build"], "431");
    std::fs::write(
        &path,
        FILE.replace(r#"recommended_build = "431""#, r#"recommended_build = "440""#),
    )
    .unwrap();
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = config(&app, "", Some(OLD)).await.body["recommended_build"].clone();
        if seen == "440" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "440", "the file was not reloaded within 5 s");
    shutdown.cancel();
    reloader.await.unwrap();
    std::fs::remove_file(path).unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn without_a_file_there_are_no_switches() {
    let app = TestApp::spawn().await;
    let response = config(&app, "", Some(NEW)).await;
    assert_eq!(response.body["minimum_supported_build"], Value::Null);
    assert_eq!(response.body["recommended_build"], Value::Null);
    assert_eq!(switches(&response), json!({}));
    app.cleanup().await;
}
