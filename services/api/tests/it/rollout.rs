//! The api records its start in `ops.process_start` (the rollout leg of the release ledger), and starts and
//! serves whether or not that record can be written: a missing table and a write that hangs behind a lock
//! change nothing for the app.

use std::time::Duration;

use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;

use crate::app::{TestApp, at, loopback_listeners};

/// Serves the app on loopback ports through `api::run`, as `main` does: the app's base URL, the admin
/// listener's, the shutdown token and the task.
async fn serve(
    app: &TestApp,
) -> (String, String, CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let (listeners, base, admin) = loopback_listeners().await;
    let shutdown = CancellationToken::new();
    let served = tokio::spawn(api::run(app.state.clone(), listeners, shutdown.clone()));
    (base, admin, shutdown, served)
}

async fn get(base: &str, path: &str) -> reqwest::StatusCode {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    client.get(format!("{base}{path}")).send().await.unwrap().status()
}

async fn starts(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as("select service, release_id, environment from ops.process_start order by id")
        .fetch_all(&app.database.pool)
        .await
        .unwrap()
}

/// The recorded starts, once there is one (the record is written in the background).
async fn starts_within_5s(app: &TestApp) -> Vec<(String, String, String)> {
    let mut recorded = Vec::new();
    for _ in 0..50 {
        recorded = starts(app).await;
        if !recorded.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    recorded
}

#[tokio::test]
async fn a_start_is_recorded_with_the_release_and_the_clock_time() {
    let app = TestApp::spawn().await;
    let (base, _admin, shutdown, served) = serve(&app).await;
    assert_eq!(get(&base, "/healthz").await, 200);
    let recorded = starts_within_5s(&app).await;
    assert_eq!(recorded, [("api".to_owned(), "test-release".to_owned(), "dev".to_owned())]);
    let (started_at,): (i64,) =
        sqlx::query_as("select extract(epoch from started_at)::bigint from ops.process_start")
            .fetch_one(&app.database.pool)
            .await
            .unwrap();
    assert_eq!(started_at, at(0).as_unix_seconds(), "the start is stamped by the service's clock");
    shutdown.cancel();
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_start_that_cannot_be_recorded_still_starts_and_serves() {
    let app = TestApp::spawn().await;
    app.execute("alter table ops.process_start rename to process_start_elsewhere").await;
    let (base, admin, shutdown, served) = serve(&app).await;
    assert_eq!(get(&base, "/healthz").await, 200);
    assert_eq!(get(&admin, "/readyz").await, 200);
    assert_eq!(get(&base, "/v2/status").await, 200);
    shutdown.cancel();
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_start_record_stuck_behind_a_lock_does_not_hold_the_api_up() {
    let app = TestApp::spawn().await;
    // Another session holds the table: the insert waits for as long as the lock is held.
    let mut locker = sqlx::PgConnection::connect(&app.database.url).await.unwrap();
    sqlx::raw_sql("begin; lock table ops.process_start in access exclusive mode")
        .execute(&mut locker)
        .await
        .unwrap();
    let (base, _admin, shutdown, served) = serve(&app).await;
    assert_eq!(get(&base, "/healthz").await, 200);
    assert_eq!(get(&base, "/v2/status").await, 200);
    // Once the lock goes, the waiting record lands.
    sqlx::raw_sql("rollback").execute(&mut locker).await.unwrap();
    let recorded = starts_within_5s(&app).await;
    assert_eq!(recorded.len(), 1, "the start is recorded after the lock is released");
    shutdown.cancel();
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn operational_routes_are_only_on_the_admin_listener() {
    let app = TestApp::spawn().await;
    let (base, admin, shutdown, served) = serve(&app).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let body = |url: String| {
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    // The port the Ingress routes: a bare liveness answer and nothing operational.
    assert_eq!(
        body(format!("{base}/healthz")).await,
        (reqwest::StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
    );
    for path in ["/metrics", "/readyz"] {
        assert_eq!(body(format!("{base}{path}")).await.0, reqwest::StatusCode::NOT_FOUND, "{path}");
    }
    // The admin port: the release, readiness details, metrics.
    let (status, health) = body(format!("{admin}/healthz")).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(health.contains(r#""release_id":"test-release""#), "{health}");
    let (status, ready) = body(format!("{admin}/readyz")).await;
    assert!(status == reqwest::StatusCode::OK && ready.contains(r#""database""#), "{ready}");
    let (status, metrics) = body(format!("{admin}/metrics")).await;
    assert!(
        status == reqwest::StatusCode::OK && metrics.contains("hangang_build_info"),
        "{metrics}"
    );
    assert_eq!(body(format!("{admin}/v2/status")).await.0, reqwest::StatusCode::NOT_FOUND);
    shutdown.cancel();
    served.await.unwrap().unwrap();
    app.cleanup().await;
}
