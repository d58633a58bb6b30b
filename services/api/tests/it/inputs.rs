//! Bad input gets a 400 envelope naming the field; unknown things get 404; write routes are rate limited.

use axum::http::{Method, StatusCode};

use crate::app::TestApp;

async fn expect_error(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (StatusCode, String, String) {
    let response = app.request(method, path, headers, body).await;
    let error = &response.body["error"];
    assert!(error["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{}", response.body);
    assert_eq!(
        response.headers["x-request-id"].to_str().unwrap(),
        error["request_id"].as_str().unwrap()
    );
    (
        response.status,
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["field"].as_str().unwrap_or_default().to_owned(),
    )
}

const JSON: (&str, &str) = ("content-type", "application/json");
const TOKEN: &str = "5b0c2a4e9f1d3c7b8a6e0f2d4c6b8a0e1f3d5c7b9a1e3f5d7c9b1a3e5f7d9c1b";

#[tokio::test]
async fn malformed_queries_name_the_parameter() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/v2/home-summary?lang=fr", "lang"),
        ("/v2/widgets/parking", "lot_ids"),
        ("/v2/widgets/parking?lot_ids=,", "lot_ids"),
    ];
    for (path, field) in cases {
        assert_eq!(
            expect_error(&app, Method::GET, path, &[], None).await,
            (StatusCode::BAD_REQUEST, "bad_request".into(), field.into()),
            "{path}"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn unknown_parks_lots_and_routes_are_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/v2/parks/atlantis",
        "/v2/lots/nowhere/forecast",
        "/v2/widgets/parking?lot_ids=yeouido-2,nowhere",
        "/v3/home-summary",
    ] {
        let (status, code, _) = expect_error(&app, Method::GET, path, &[], None).await;
        assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"), "{path}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn installation_bodies_are_validated_field_by_field() {
    let app = TestApp::spawn().await;
    let valid = format!(
        r#"{{"apns_token":"{TOKEN}","apns_environment":"production","locale":"ko-KR","app_version":"2.3.0 (412)"}}"#
    );
    let cases = [
        (valid.replace(TOKEN, "abc"), "apns_token"),
        (valid.replace("ko-KR", "korean"), "locale"),
        (valid.replace("2.3.0 (412)", "latest"), "app_version"),
        (valid.replace("\"production\"", "\"staging\""), "apns_environment"),
        (valid.replace(r#""locale":"ko-KR","#, ""), "locale"),
        (valid.replace(r#""app_version":"2.3.0 (412)""#, r#""app_version":23"#), "app_version"),
        ("{not json".to_owned(), "body"),
    ];
    for (body, field) in &cases {
        let (status, code, named) =
            expect_error(&app, Method::POST, "/v2/installations", &[JSON], Some(body)).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{body}");
        assert!(
            named == *field || (field == &"body" && !named.is_empty()),
            "{body}: named `{named}`, expected `{field}`"
        );
    }
    // Valid input passes validation and then says, honestly, that push is not connected yet.
    let (status, code, _) =
        expect_error(&app, Method::POST, "/v2/installations", &[JSON], Some(&valid)).await;
    assert_eq!((status, code.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));

    let (status, code, _) = expect_error(
        &app,
        Method::POST,
        "/v2/installations",
        &[("content-type", "text/plain")],
        Some(&valid),
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    app.cleanup().await;
}

#[tokio::test]
async fn preferences_are_checked_against_the_contract_and_reference_data() {
    let app = TestApp::spawn().await;
    let auth = ("authorization", "Bearer hjs_secret");
    let path = "/v2/installations/0f8e7d6c/preferences";
    let subscription = |target_kind: &str, target: &str, signal: &str, threshold: &str| {
        format!(
            r#"{{"quiet_hours":{{"start":"22:00","end":"07:00"}},"subscriptions":[{{"target_kind":"{target_kind}","target_id":"{target}","signal":"{signal}","threshold":{threshold},"weekdays":["sat"]}}]}}"#
        )
    };
    let cases = [
        (
            subscription("lot", "yeouido-2", "lot_available_below", "null"),
            "subscriptions[0].threshold",
        ),
        (
            subscription("lot", "yeouido-2", "lot_available_below", "99999"),
            "subscriptions[0].threshold",
        ),
        (
            subscription("lot", "atlantis-1", "lot_available_below", "50"),
            "subscriptions[0].target_id",
        ),
        (subscription("park", "yeouido", "lot_full", "null"), "subscriptions[0].target_id"),
        (subscription("park", "yeouido", "park_closed", "5"), "subscriptions[0].threshold"),
        (subscription("park", "yeouido", "weather_alarm", "null"), "subscriptions[0].signal"),
        (
            subscription("lot", "yeouido-2", "lot_full", "null").replace("22:00", "24:00"),
            "quiet_hours.start",
        ),
        (
            subscription("lot", "yeouido-2", "lot_full", "null")
                .replace("[\"sat\"]", "[\"sat\",\"sat\"]"),
            "subscriptions[0].weekdays",
        ),
    ];
    for (body, field) in &cases {
        let (status, _, named) =
            expect_error(&app, Method::PUT, path, &[JSON, auth], Some(body)).await;
        assert_eq!((status, named.as_str()), (StatusCode::BAD_REQUEST, *field), "{body}");
    }
    let ok = subscription("lot", "yeouido-2", "lot_available_below", "50");
    let (status, _, _) = expect_error(&app, Method::PUT, path, &[JSON, auth], Some(&ok)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, code, _) = expect_error(&app, Method::PUT, path, &[JSON], Some(&ok)).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    app.cleanup().await;
}

#[tokio::test]
async fn oversized_bodies_and_write_floods_are_refused() {
    let app = TestApp::spawn().await;
    let huge = format!("{{\"apns_token\":\"{}\"}}", "a".repeat(20_000));
    let (status, code, _) =
        expect_error(&app, Method::POST, "/v2/installations", &[JSON], Some(&huge)).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));

    // Writes to one installation: 10 a minute, whoever sends them.
    let mut limited = false;
    for _ in 0..30 {
        let response = app
            .request(
                Method::DELETE,
                "/v2/installations/abc",
                &[("authorization", "Bearer x")],
                None,
            )
            .await;
        if response.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.body["error"]["code"], "rate_limited");
            // 10 a minute: the next token is about six seconds away.
            let retry_after =
                response.headers.get("retry-after").expect("a 429 says when to retry");
            let seconds: u64 = retry_after.to_str().unwrap().parse().unwrap();
            assert!((1..=6).contains(&seconds), "retry-after {seconds}");
            limited = true;
            break;
        }
    }
    assert!(limited, "the write limit never applied");
    app.cleanup().await;
}
