//! Turning a rendered body into an HTTP response: pre-serialized bytes, a strong `ETag`, `304 Not Modified`
//! for a matching `If-None-Match`, and a `Cache-Control` that never lets a client keep a body past the moment
//! its freshness states would change.

use std::hash::{DefaultHasher, Hash, Hasher};

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use contracts::{Timestamp, freshness::ServedFrom};
use serde::Serialize;

/// A serialized body with its validators.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub bytes: Bytes,
    pub etag: HeaderValue,
    /// Until when a client or the in-process body cache may reuse it; `None` = do not reuse.
    pub reusable_until: Option<Timestamp>,
}

impl Rendered {
    pub fn new(body: &impl Serialize, reusable_until: Option<Timestamp>) -> Rendered {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("contract bodies serialize"));
        // The hash only has to agree between replicas of one release (same binary, same fixed keys).
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        let etag =
            HeaderValue::from_str(&format!("\"{:016x}-{:x}\"", hasher.finish(), bytes.len()))
                .expect("hex is a valid header value");
        Rendered { bytes, etag, reusable_until }
    }

    /// `200` with the body, or `304` when the client already has it.
    pub fn respond(&self, request_headers: &HeaderMap, now: Timestamp) -> Response {
        let cache_control = match self.reusable_until {
            Some(until) => {
                let seconds = now.seconds_until(until).max(0);
                HeaderValue::from_str(&format!("public, max-age={seconds}")).expect("ascii")
            }
            None => HeaderValue::from_static("no-cache"),
        };
        let not_modified = request_headers
            .get(header::IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .any(|tag| tag == "*" || tag.as_bytes() == self.etag.as_bytes())
            });
        let mut response = if not_modified {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = self.bytes.clone().into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, cache_control);
        headers.insert(header::VARY, HeaderValue::from_static("accept-language, accept-encoding"));
        response
    }
}

/// How long a body rendered from a snapshot stays correct: until the snapshot stops being hot or a freshness
/// state in it changes, whichever is first. Fallback bodies are not reused.
pub fn reusable_until(
    served_from: ServedFrom,
    hot_until: Timestamp,
    next_transition: Option<Timestamp>,
) -> Option<Timestamp> {
    if served_from == ServedFrom::StaleFallback {
        return None;
    }
    Some(next_transition.map_or(hot_until, |transition| transition.min(hot_until)))
}
