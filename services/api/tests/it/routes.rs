//! Every route's body, pinned by snapshots; every catalogued endpoint routed; the OpenAPI documents served
//! and committed.

use axum::http::{Method, StatusCode};
use contracts::catalogue;

use crate::app::TestApp;

#[tokio::test]
async fn before_any_collection_values_are_unknown_and_say_so() {
    let app = TestApp::spawn().await;
    let response = app.get("/v2/home-summary?lang=en").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["served_from"], "live");
    let parks = response.body["parks"].as_array().unwrap();
    assert_eq!(parks.len(), 11);
    for park in parks {
        assert!(park["parking"]["available"].is_null(), "{park}");
        assert_eq!(park["parking"]["freshness"]["state"], "unknown");
        assert_eq!(park["parking"]["freshness"]["source_status"], "not_collected");
        assert!(park["events_today"]["count"].is_null(), "unknown, not zero: {park}");
    }
    insta::assert_json_snapshot!("empty_home_summary_yeouido", parks[7]);
    let status = app.get("/v2/status").await;
    insta::assert_json_snapshot!("empty_status", status.body);
    app.cleanup().await;
}

#[tokio::test]
async fn every_route_body() {
    let app = TestApp::spawn().await;
    app.seed_afternoon().await;
    for (name, path) in [
        ("home_summary_v2_en", "/v2/home-summary?lang=en"),
        ("home_summary_v1_ko", "/v1/home-summary"),
        ("parks_ja", "/v2/parks?lang=ja"),
        ("park_detail_yeouido_en", "/v2/parks/yeouido?lang=en"),
        ("park_forecast_yeouido", "/v2/parks/yeouido/forecast"),
        ("lot_forecast_yeouido_2", "/v2/lots/yeouido-2/forecast"),
        ("lot_forecast_without_history", "/v2/lots/gangseo-1/forecast"),
        ("parking_widget", "/v2/widgets/parking?lot_ids=yeouido-2,yeouido-5,banpo-1&lang=en"),
        ("park_widget_zh", "/v2/widgets/park/yeouido?lang=zh-Hans"),
        ("status", "/v2/status"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::OK, "{path}: {}", response.body);
        let body = if name.starts_with("home_summary") || name.starts_with("parks_") {
            // Eleven parks are long; the seeded ones carry the interesting values.
            let parks = response.body["parks"].as_array().unwrap();
            let mut trimmed = response.body.clone();
            trimmed["parks"] = serde_json::json!([parks[4], parks[7], parks[9]]);
            trimmed
        } else {
            response.body
        };
        insta::assert_json_snapshot!(name, body);
    }
    app.cleanup().await;
}

#[tokio::test]
async fn every_catalogued_endpoint_is_routed() {
    let app = TestApp::spawn().await;
    for version in catalogue::versions() {
        for endpoint in &version.endpoints {
            let path = endpoint
                .path
                .replace("{park_id}", "yeouido")
                .replace("{lot_id}", "yeouido-2")
                .replace("{installation_id}", "abc");
            let path = if endpoint.path.contains("widgets/parking") {
                format!("{path}?lot_ids=yeouido-2")
            } else {
                path
            };
            let method = Method::from_bytes(endpoint.method.as_bytes()).unwrap();
            let response = app.request(method, &path, &[], None).await;
            let message = response.body["error"]["message"].as_str().unwrap_or_default().to_owned();
            assert!(
                !(response.status == StatusCode::NOT_FOUND && message == "no such route")
                    && response.status != StatusCode::METHOD_NOT_ALLOWED,
                "{} {path} is not routed: {}",
                endpoint.method,
                response.status
            );
        }
    }
    app.cleanup().await;
}

#[tokio::test]
async fn openapi_documents_are_served_and_committed() {
    let app = TestApp::spawn().await;
    for version in ["v1", "v2"] {
        let served = app.get(&format!("/openapi/{version}.json")).await;
        assert_eq!(served.status, StatusCode::OK);
        assert_eq!(served.body["openapi"], "3.1.0");
        let committed_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../contracts/openapi/{version}.json"));
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&committed_path).unwrap()).unwrap();
        assert_eq!(
            served.body, committed,
            "contracts/openapi/{version}.json is stale: run `cargo xtask codegen`"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn etag_gives_304_and_bodies_compress_when_asked() {
    let app = TestApp::spawn().await;
    app.seed_afternoon().await;
    let first = app.get("/v2/home-summary").await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let cache_control = first.headers["cache-control"].to_str().unwrap().to_owned();
    assert!(cache_control.starts_with("public, max-age="), "{cache_control}");

    let again =
        app.request(Method::GET, "/v2/home-summary", &[("if-none-match", &etag)], None).await;
    // The first answer was `live`; this one comes from the hot cache, so its body (and ETag) differ.
    assert_eq!(again.status, StatusCode::OK);
    let etag = again.headers["etag"].to_str().unwrap().to_owned();
    let third =
        app.request(Method::GET, "/v2/home-summary", &[("if-none-match", &etag)], None).await;
    assert_eq!(third.status, StatusCode::NOT_MODIFIED);
    assert!(third.raw.is_empty());

    // What iOS sends: brotli is chosen, and each coding is its own representation with its own ETag.
    let ios = [("accept-encoding", "gzip, deflate, br")];
    let brotli = app.request(Method::GET, "/v2/home-summary", &ios, None).await;
    assert_eq!(brotli.headers["content-encoding"], "br");
    assert!(brotli.raw.len() < again.raw.len() / 3, "{} vs {}", brotli.raw.len(), again.raw.len());
    let brotli_etag = brotli.headers["etag"].to_str().unwrap().to_owned();
    let gzip =
        app.request(Method::GET, "/v2/home-summary", &[("accept-encoding", "gzip")], None).await;
    assert_eq!(gzip.headers["content-encoding"], "gzip");
    let gzip_etag = gzip.headers["etag"].to_str().unwrap().to_owned();
    assert!(gzip.raw.len() < again.raw.len() / 3, "{} vs {}", gzip.raw.len(), again.raw.len());
    assert!(etag != brotli_etag && etag != gzip_etag && brotli_etag != gzip_etag);
    // The kept compressed bytes are served again, and decode to the identity body.
    let brotli_again = app.request(Method::GET, "/v2/home-summary", &ios, None).await;
    assert_eq!(brotli_again.raw, brotli.raw);
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(&mut brotli::Decompressor::new(&brotli.raw[..], 4096), &mut decoded)
        .unwrap();
    assert_eq!(decoded, again.raw);
    // A validator is per representation: the brotli ETag revalidates brotli, not gzip.
    let revalidated = app
        .request(Method::GET, "/v2/home-summary", &[ios[0], ("if-none-match", &brotli_etag)], None)
        .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    let other_coding = app
        .request(
            Method::GET,
            "/v2/home-summary",
            &[("accept-encoding", "gzip"), ("if-none-match", &brotli_etag)],
            None,
        )
        .await;
    assert_eq!(other_coding.status, StatusCode::OK);
    assert_eq!(other_coding.headers["etag"].to_str().unwrap(), gzip_etag);
    // Park detail is kept too (so compressed once): the same bytes and ETag on the next request.
    let park = app.request(Method::GET, "/v2/parks/yeouido", &ios, None).await;
    let park_again = app.request(Method::GET, "/v2/parks/yeouido", &ios, None).await;
    assert_eq!(park.status, StatusCode::OK);
    assert_eq!(park.headers["etag"], park_again.headers["etag"]);
    assert_eq!(park.raw, park_again.raw);
    assert_eq!(app.get("/v2/parks/nowhere").await.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

#[tokio::test]
async fn cache_control_never_outlives_a_freshness_change() {
    let app = TestApp::spawn_with(
        3_600,
        &std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into()),
    )
    .await;
    app.seed_afternoon().await;
    // Parking was observed 60 s ago and turns stale 600 s after observation: at most 541 s of reuse.
    let response = app.get("/v2/home-summary").await;
    let cache_control = response.headers["cache-control"].to_str().unwrap();
    let max_age: i64 = cache_control.trim_start_matches("public, max-age=").parse().unwrap();
    assert!(max_age <= 541, "{cache_control}");
    app.cleanup().await;
}
