//! The documented fallbacks: Redis down → PostgreSQL; PostgreSQL down → last good build as
//! `stale_fallback`; both down with no earlier build → 503 envelope.

use axum::http::{Method, StatusCode};

use crate::app::{TestApp, admin_get, request_to};

/// Nothing listens here: connecting fails at once.
const REDIS_DOWN: &str = "redis://127.0.0.1:1";

#[tokio::test]
async fn redis_down_serves_from_postgres() {
    let app = TestApp::spawn_with(15, REDIS_DOWN).await;
    app.seed_afternoon().await;
    let first = app.get("/v2/home-summary").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["served_from"], "live");
    let second = app.get("/v2/home-summary").await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["served_from"], "hot_cache", "the in-process copy still works");

    let ready = app.admin("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "Redis alone never makes the api unready");
    assert_eq!(ready.body["redis"], false);
    assert_eq!(ready.body["database"], true);
    app.cleanup().await;
}

#[tokio::test]
async fn postgres_down_serves_the_last_good_build_with_honest_freshness() {
    let app = TestApp::spawn().await;
    app.seed_afternoon().await;
    assert_eq!(app.get("/v2/home-summary").await.body["served_from"], "live");

    // PostgreSQL becomes unreachable; twenty minutes pass.
    app.database.pool.close().await;
    app.clock.advance(20 * 60);
    let response = app.get("/v2/home-summary").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["served_from"], "stale_fallback");
    let yeouido = &response.body["parks"][7];
    assert_eq!(yeouido["parking"]["available"], 293);
    assert_eq!(yeouido["parking"]["freshness"]["state"], "stale");
    assert_eq!(response.headers["cache-control"], "no-cache");

    // A new replica that never saw PostgreSQL finds the last good build in Redis.
    let replica = app.second_replica(app.database.pool.clone());
    let from_redis = request_to(&replica, Method::GET, "/v2/parks/yeouido", &[], None).await;
    assert_eq!(from_redis.status, StatusCode::OK);
    assert_eq!(from_redis.body["served_from"], "stale_fallback");

    let ready = admin_get(&replica, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "it can serve: {}", ready.body);
    assert_eq!(ready.body["database"], false);
    app.cleanup().await;
}

#[tokio::test]
async fn both_down_without_an_earlier_build_is_a_503_envelope() {
    let app = TestApp::spawn_with(15, REDIS_DOWN).await;
    app.database.pool.close().await;
    let response = app.get("/v2/home-summary").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.body["error"]["code"], "unavailable");
    assert!(response.body["error"]["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(app.admin("/readyz").await.status, StatusCode::SERVICE_UNAVAILABLE);
    app.cleanup().await;
}

#[tokio::test]
async fn replicas_share_one_build_through_redis() {
    let app = TestApp::spawn().await;
    app.seed_afternoon().await;
    assert_eq!(app.get("/v2/home-summary").await.body["served_from"], "live");
    let replica = app.second_replica(app.database.pool.clone());
    let response = request_to(&replica, Method::GET, "/v2/home-summary", &[], None).await;
    assert_eq!(response.body["served_from"], "hot_cache", "the replica reused the build in Redis");
    app.cleanup().await;
}
