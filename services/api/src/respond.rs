//! Turning a rendered body into an HTTP response: pre-serialized bytes, compressed once per content coding
//! and kept with the body (a cached body is compressed once, not per request), a strong `ETag` per
//! representation, `304 Not Modified` for a matching `If-None-Match`, and a `Cache-Control` that never lets a
//! client keep a body past the moment its freshness states would change.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, OnceLock},
};

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use contracts::{Timestamp, freshness::ServedFrom};
use serde::Serialize;

use crate::encoding::{self, Coding};

/// A serialized body with its validators. Clones share the compressed forms.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub bytes: Bytes,
    /// The entity tag's opaque part, without quotes: each coding's tag adds its own suffix.
    tag: Arc<str>,
    /// Until when a client or the in-process body cache may reuse it; `None` = do not reuse.
    pub reusable_until: Option<Timestamp>,
    compressed: Arc<Compressed>,
}

/// The body in each content coding and each representation's entity tag, made on first use.
#[derive(Debug, Default)]
struct Compressed {
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
    etags: [OnceLock<HeaderValue>; 3],
}

impl Rendered {
    pub fn new(body: &impl Serialize, reusable_until: Option<Timestamp>) -> Rendered {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("contract bodies serialize"));
        Rendered::from_bytes(bytes, reusable_until)
    }

    /// A document served as it is (the OpenAPI documents), with the same validators and codings.
    pub fn from_json_text(text: &str) -> Rendered {
        Rendered::from_bytes(Bytes::copy_from_slice(text.as_bytes()), None)
    }

    fn from_bytes(bytes: Bytes, reusable_until: Option<Timestamp>) -> Rendered {
        // The hash only has to agree between replicas of one release (same binary, same fixed keys).
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        let tag = format!("{:016x}-{:x}", hasher.finish(), bytes.len()).into();
        Rendered { bytes, tag, reusable_until, compressed: Arc::default() }
    }

    /// The strong entity tag of the body in `coding` (made once per body and coding: a cached body answers
    /// many requests).
    pub fn etag(&self, coding: Coding) -> HeaderValue {
        let slot = &self.compressed.etags[coding as usize];
        slot.get_or_init(|| {
            HeaderValue::from_str(&format!("\"{}{}\"", self.tag, coding.etag_suffix()))
                .expect("hex is a valid header value")
        })
        .clone()
    }

    /// The body in `coding`, compressed on first use and kept.
    pub fn body(&self, coding: Coding) -> Bytes {
        let slot = match coding {
            Coding::Identity => return self.bytes.clone(),
            Coding::Gzip => &self.compressed.gzip,
            Coding::Brotli => &self.compressed.brotli,
        };
        slot.get_or_init(|| coding.encode(&self.bytes)).clone()
    }

    /// `200` with the body, or `304` when the client already has it.
    pub fn respond(&self, request_headers: &HeaderMap, now: Timestamp) -> Response {
        let cache_control = match self.reusable_until {
            Some(until) => {
                let seconds = now.seconds_until(until).max(0);
                // Built in place: the value changes every second, so it cannot be kept with the body.
                HeaderValue::from_maybe_shared(Bytes::from(format!("public, max-age={seconds}")))
                    .expect("ascii")
            }
            None => HeaderValue::from_static("no-cache"),
        };
        let coding = encoding::negotiate(request_headers, self.bytes.len());
        let etag = self.etag(coding);
        let mut response = if if_none_match(request_headers, &etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Response::new(axum::body::Body::from(self.body(coding)));
            // Room for every header this response gets on its way out, so the map is allocated once.
            *response.headers_mut() = HeaderMap::with_capacity(12);
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(content_encoding) = coding.header_value() {
                headers.insert(header::CONTENT_ENCODING, content_encoding);
            }
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag);
        headers.insert(header::CACHE_CONTROL, cache_control);
        headers.insert(header::VARY, HeaderValue::from_static("accept-language, accept-encoding"));
        response
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`), by the weak comparison RFC 9110 prescribes for it.
fn if_none_match(request_headers: &HeaderMap, etag: &HeaderValue) -> bool {
    request_headers.get_all(header::IF_NONE_MATCH).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value.split(',').map(str::trim).any(|tag| {
                tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag.as_bytes()
            })
        })
    })
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
