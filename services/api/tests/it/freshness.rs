//! Freshness is computed when a body is served, also from the hot cache: the same cached snapshot says
//! `fresh`, then `stale`, then `expired` as the clock moves.

use axum::http::StatusCode;

use crate::app::TestApp;

fn yeouido_lot(body: &serde_json::Value, lot_id: &str) -> serde_json::Value {
    body["lots"].as_array().unwrap().iter().find(|lot| lot["lot_id"] == lot_id).unwrap().clone()
}

#[tokio::test]
async fn a_cached_value_ages_from_fresh_to_stale_to_expired() {
    // A hot cache that outlives the whole test, so every answer after the first comes from it.
    let app = TestApp::spawn_with(
        7_200,
        &std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into()),
    )
    .await;
    app.seed_afternoon().await;

    let first = app.get("/v2/parks/yeouido").await;
    assert_eq!(first.body["served_from"], "live");
    assert_eq!(yeouido_lot(&first.body, "yeouido-2")["freshness"]["state"], "fresh");

    // Observed at -60 s: fresh until +540 s, stale until +1,740 s, then expired.
    let mut seen = Vec::new();
    for offset in [500, 600, 1_700, 1_800] {
        app.clock.advance(offset - app.clock.now().as_unix_seconds() + crate::app::T0);
        let response = app.get("/v2/parks/yeouido").await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.body["served_from"], "hot_cache", "at +{offset}s");
        let lot = yeouido_lot(&response.body, "yeouido-2");
        assert_eq!(lot["available"], 132, "the value itself stays");
        seen.push((offset, lot["freshness"]["state"].as_str().unwrap().to_owned()));
    }
    assert_eq!(
        seen,
        vec![
            (500, "fresh".to_owned()),
            (600, "stale".to_owned()),
            (1_700, "stale".to_owned()),
            (1_800, "expired".to_owned()),
        ]
    );

    // The v1 shape ages the same facts.
    let v1 = app.get("/v1/home-summary").await;
    assert_eq!(v1.body["parks"][7]["parking"]["is_stale"], true);
    app.cleanup().await;
}

#[tokio::test]
async fn a_failing_source_keeps_its_last_value_and_says_failing() {
    let app = TestApp::spawn().await;
    app.seed_afternoon().await;
    app.source_failing("parking_portal", 600, 5).await;
    app.clock.advance(900);
    let response = app.get("/v2/parks/yeouido").await;
    let lot = yeouido_lot(&response.body, "yeouido-2");
    assert_eq!(lot["available"], 132);
    assert_eq!(lot["freshness"]["source_status"], "failing");
    assert_eq!(lot["freshness"]["state"], "stale");

    // A lot the portal never reported is `no_item`... unless the source is failing, which wins.
    let gangseo = app.get("/v2/parks/gangseo").await;
    assert_eq!(gangseo.body["lots"][0]["freshness"]["source_status"], "failing");

    let status = app.get("/v2/status").await;
    let parking = &status.body["sources"][0];
    assert_eq!(parking["source"], "parking_portal");
    assert_eq!(parking["source_status"], "failing");
    assert_eq!(parking["consecutive_failures"], 5);
    assert_eq!(parking["last_error"], "timeout");
    app.cleanup().await;
}

#[tokio::test]
async fn no_item_is_distinct_from_failing() {
    let app = TestApp::spawn().await;
    app.seed_afternoon().await;
    let gangseo = app.get("/v2/parks/gangseo").await;
    let lot = &gangseo.body["lots"][0];
    assert!(lot["available"].is_null());
    assert_eq!(lot["freshness"]["source_status"], "no_item");
    assert_eq!(lot["freshness"]["state"], "fresh", "the absence itself was just confirmed");
    // Citydata succeeded but had no row for Gangseo.
    assert_eq!(gangseo.body["congestion"]["freshness"]["source_status"], "no_item");
    app.cleanup().await;
}

#[tokio::test]
async fn forecasts_go_stale_at_serve_time() {
    let app = TestApp::spawn_with(
        7_200,
        &std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into()),
    )
    .await;
    app.seed_afternoon().await;
    let fresh = app.get("/v2/lots/yeouido-2/forecast").await;
    assert_eq!(fresh.body["confidence"], "medium");
    assert_eq!(fresh.body["horizons"].as_array().unwrap().len(), 2);

    // 25 minutes later: the forecast (issued at -30 s) is stale and its 15-minute horizon has passed.
    app.clock.advance(25 * 60);
    let later = app.get("/v2/lots/yeouido-2/forecast").await;
    assert_eq!(later.body["served_from"], "hot_cache");
    assert_eq!(later.body["horizons"].as_array().unwrap().len(), 1);
    assert_eq!(later.body["confidence"], "low");
    assert!(
        later.body["reasons"].as_array().unwrap().contains(&"source_stale".into()),
        "{}",
        later.body
    );

    // Two hours later nothing is left to forecast: no number is made up.
    app.clock.advance(2 * 60 * 60);
    let expired = app.get("/v2/lots/yeouido-2/forecast").await;
    assert_eq!(expired.body["horizons"], serde_json::json!([]));
    assert!(expired.body["confidence"].is_null());
    app.cleanup().await;
}
