//! Operational routes: liveness, readiness, Prometheus metrics and the OpenAPI documents.

use std::sync::LazyLock;

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::AppState;

/// The process is alive and its event loop answers.
pub async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(state.identity.health_body())
}

/// Whether this replica can serve: PostgreSQL answers, or an earlier build can be served while it does not.
/// Redis is reported but never makes the api unready: without it the api serves from PostgreSQL.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = state.store.database_reachable().await;
    let redis = state.store.cache().ping().await.is_ok();
    let can_serve = database || state.store.has_last_good();
    let status = if can_serve { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if can_serve { "ok" } else { "unavailable" },
        "service": "api",
        "release_id": state.identity.release_id,
        "commit": state.identity.commit,
        "database": database,
        "redis": redis,
    });
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    server::metrics_response(&state.identity, &state.metrics.encode())
}

fn openapi_for(version: &str) -> String {
    let versions = contracts::catalogue::versions();
    let contract =
        versions.iter().find(|v| v.version == version).expect("served versions are catalogued");
    serde_json::to_string(&contracts::openapi::document(contract)).expect("documents serialize")
}

static OPENAPI_V1: LazyLock<String> = LazyLock::new(|| openapi_for("v1"));
static OPENAPI_V2: LazyLock<String> = LazyLock::new(|| openapi_for("v2"));

fn json_text(text: &'static str) -> Response {
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub async fn openapi_v1() -> Response {
    json_text(OPENAPI_V1.as_str())
}

pub async fn openapi_v2() -> Response {
    json_text(OPENAPI_V2.as_str())
}
