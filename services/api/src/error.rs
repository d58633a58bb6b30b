//! The one error envelope, request ids, and the middleware that puts them on every response.
//!
//! Handlers return [`ApiError`]; it becomes a status plus [`ErrorParts`] in the response extensions. The
//! [`envelope`] middleware, which knows the request id, writes the JSON body. Responses that fail before a
//! handler runs (unknown route, wrong method, body too large, timeout) get an envelope from their status.

use std::{
    hash::{BuildHasher, RandomState},
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use contracts::v2::{ErrorBody, ErrorCode, ErrorEnvelope};
use tracing::Instrument;

use crate::AppState;

/// What went wrong, in terms the app can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("missing or invalid installation secret")]
    Unauthorized,
    #[error("too many requests; retry later")]
    RateLimited,
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { field: field.into(), message: message.into() }
    }

    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The parts of an envelope a handler knows; the middleware adds the request id.
#[derive(Clone, Debug)]
pub struct ErrorParts {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let (code, field) = match &self {
            ApiError::BadRequest { field, .. } => (ErrorCode::BadRequest, Some(field.clone())),
            ApiError::NotFound(_) => (ErrorCode::NotFound, None),
            ApiError::Unauthorized => (ErrorCode::Unauthorized, None),
            ApiError::RateLimited => (ErrorCode::RateLimited, None),
            ApiError::Unavailable(_) => (ErrorCode::Unavailable, None),
            ApiError::Internal(error) => {
                // Details go to the log with the request id, never to the client.
                tracing::error!(error = format!("{error:#}"), "request failed");
                (ErrorCode::Internal, None)
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorParts { code, message: self.to_string(), field });
        response
    }
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);
static PROCESS_SEED: LazyLock<u64> =
    LazyLock::new(|| RandomState::new().hash_one(std::process::id()));

/// A new request id: this process's seed and a counter, 24 hex digits, written without formatting machinery
/// (every request that brings no id of its own gets one).
fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
    let digits = (u128::from(*PROCESS_SEED) << 32) | u128::from(n);
    let mut text = [0u8; 24];
    for (position, byte) in text.iter_mut().enumerate() {
        *byte = HEX[((digits >> (4 * (23 - position))) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&text).expect("hex digits are a valid header value")
}

/// The client's `x-request-id` when it is sane: 1 to 64 letters, digits, `-` or `_`.
fn client_request_id(value: &HeaderValue) -> Option<HeaderValue> {
    let bytes = value.as_bytes();
    let sane = !bytes.is_empty()
        && bytes.len() <= 64
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    sane.then(|| value.clone())
}

/// The `method` label of a request: the standard methods by name, anything else `other`, so a client
/// inventing methods cannot grow the metrics without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

fn code_for_status(status: StatusCode) -> (ErrorCode, &'static str) {
    match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            (ErrorCode::BadRequest, "method not allowed on this route")
        }
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ErrorCode::BadRequest, "expected an application/json body")
        }
        StatusCode::TOO_MANY_REQUESTS => (ErrorCode::RateLimited, "too many requests; retry later"),
        StatusCode::REQUEST_TIMEOUT
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => {
            (ErrorCode::Unavailable, "the request took too long; retry later")
        }
        status if status.is_client_error() => (ErrorCode::BadRequest, "bad request"),
        _ => (ErrorCode::Internal, "internal error"),
    }
}

const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// Assigns the request id, opens the request's span (linking the caller's W3C trace), answers `503` past
/// [`crate::REQUEST_TIMEOUT`], records latency by route and the request by API version × app build, adds a
/// retired version's `Deprecation`/`Sunset`, and turns every error status into the JSON envelope.
pub async fn envelope(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(client_request_id)
        .unwrap_or_else(new_request_id);
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(request.method());
    let api_version = crate::usage::ApiVersion::of_path(request.uri().path());
    let caller = crate::app_version::Caller::identify(request.headers());
    let span = tracing::info_span!(
        "http request",
        http.method = method,
        http.route = route,
        request_id = request_id.to_str().unwrap_or_default(),
        http.status = tracing::field::Empty,
    );
    // A request's traceparent is the caller's to choose (the app, or anyone): linked, never continued, so
    // no client picks our trace ids or sampling.
    telemetry::link_remote(&span, request.headers());

    let mut response = match tokio::time::timeout(
        crate::REQUEST_TIMEOUT,
        next.run(request).instrument(span.clone()),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let status = response.status();
    span.record("http.status", status.as_u16());
    if status.is_client_error() || status.is_server_error() {
        let parts = response.extensions_mut().remove::<ErrorParts>().unwrap_or_else(|| {
            let (code, message) = code_for_status(status);
            ErrorParts { code, message: message.to_owned(), field: None }
        });
        let body = ErrorEnvelope {
            error: ErrorBody {
                code: parts.code,
                message: parts.message,
                request_id: request_id.to_str().unwrap_or_default().to_owned(),
                field: parts.field,
            },
        };
        let bytes = serde_json::to_vec(&body).expect("envelopes serialize");
        let (mut head, _) = response.into_parts();
        head.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        head.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        head.headers.remove(header::CONTENT_LENGTH);
        response = Response::from_parts(head, Body::from(bytes));
    }
    response.headers_mut().insert(REQUEST_ID, request_id);
    crate::retirement::add_headers(&state.retirement, api_version, response.headers_mut());
    state.metrics.request(route, method, status.as_u16(), started.elapsed());
    state.usage.record(api_version, &caller, state.now());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_24_hex_digits_and_distinct_and_only_sane_client_ids_are_kept() {
        let (first, second) = (new_request_id(), new_request_id());
        assert_ne!(first, second);
        for id in [&first, &second] {
            assert_eq!(id.len(), 24);
            assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit), "{id:?}");
        }
        let kept = HeaderValue::from_static("app-7F_2");
        assert_eq!(client_request_id(&kept), Some(kept));
        for refused in ["", "a b", "<script>", &"x".repeat(65)] {
            assert_eq!(
                client_request_id(&HeaderValue::from_str(refused).unwrap()),
                None,
                "{refused:?}"
            );
        }
    }

    #[test]
    fn invented_methods_are_labelled_other() {
        let invented = axum::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&axum::http::Method::GET), "GET");
    }
}
