//! Operational routes: liveness on both listeners (bare on the app's), readiness and Prometheus metrics on the
//! admin listener, and the OpenAPI documents on the app's.

use std::sync::LazyLock;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{AppState, respond::Rendered};

/// The app port's liveness: the process answers, and nothing about what it runs.
pub async fn alive() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process is alive and its event loop answers, with its release (admin listener).
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

fn openapi_for(version: &str) -> Rendered {
    let versions = contracts::catalogue::versions();
    let contract =
        versions.iter().find(|v| v.version == version).expect("served versions are catalogued");
    Rendered::from_json_text(
        &serde_json::to_string(&contracts::openapi::document(contract))
            .expect("documents serialize"),
    )
}

/// The documents, serialized and (on first request per coding) compressed once per process.
static OPENAPI_V1: LazyLock<Rendered> = LazyLock::new(|| openapi_for("v1"));
static OPENAPI_V2: LazyLock<Rendered> = LazyLock::new(|| openapi_for("v2"));

pub async fn openapi_v1(State(state): State<AppState>, headers: HeaderMap) -> Response {
    OPENAPI_V1.respond(&headers, state.now())
}

pub async fn openapi_v2(State(state): State<AppState>, headers: HeaderMap) -> Response {
    OPENAPI_V2.respond(&headers, state.now())
}
