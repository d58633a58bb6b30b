//! Content codings for response bodies: which one a client accepts (`Accept-Encoding`) and compressing a body
//! at a bounded level.
//!
//! The levels are chosen for a server that compresses each cached body once and then serves the bytes:
//! brotli quality 5 and gzip level 6 cost well under a millisecond for our bodies and come within a few
//! percent of the maximum levels' size. Brotli's default quality 11 (what a generic compression layer uses)
//! costs tens of milliseconds of CPU per body, which an uncached route would pay on every request.

use std::io::Write as _;

use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;

/// Brotli quality (0–11): 5 is the usual dynamic-content setting.
pub const BROTLI_QUALITY: u32 = 5;
/// Brotli window (log2 of bytes): our bodies are far smaller than the 4 MiB this allows.
const BROTLI_WINDOW: u32 = 22;
/// Gzip level (0–9): zlib's default.
pub const GZIP_LEVEL: u32 = 6;
/// Bodies smaller than this are sent as they are: the coding's framing would eat most of the saving.
pub const MIN_COMPRESSED_BODY: usize = 256;

/// A content coding the api sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Identity = 0,
    Gzip = 1,
    Brotli = 2,
}

impl Coding {
    /// The `Content-Encoding` value, `None` for identity.
    pub fn header_value(self) -> Option<HeaderValue> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some(HeaderValue::from_static("gzip")),
            Coding::Brotli => Some(HeaderValue::from_static("br")),
        }
    }

    /// What the coding adds to a body's entity tag, so each representation has its own (RFC 9110 §8.8.3).
    pub fn etag_suffix(self) -> &'static str {
        match self {
            Coding::Identity => "",
            Coding::Gzip => "-gz",
            Coding::Brotli => "-br",
        }
    }

    /// `body` in this coding.
    pub fn encode(self, body: &[u8]) -> Bytes {
        match self {
            Coding::Identity => Bytes::copy_from_slice(body),
            Coding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 3),
                    flate2::Compression::new(GZIP_LEVEL),
                );
                encoder.write_all(body).expect("writing to a Vec cannot fail");
                Bytes::from(encoder.finish().expect("writing to a Vec cannot fail"))
            }
            Coding::Brotli => {
                let mut out = Vec::with_capacity(body.len() / 3);
                {
                    let mut encoder = brotli::CompressorWriter::new(
                        &mut out,
                        4096,
                        BROTLI_QUALITY,
                        BROTLI_WINDOW,
                    );
                    encoder.write_all(body).expect("writing to a Vec cannot fail");
                }
                Bytes::from(out)
            }
        }
    }
}

/// The coding to send a body of `len` bytes in, from the request's `Accept-Encoding`: brotli, else gzip, else
/// identity. A coding counts as accepted when it is listed (or matched by `*`) with a quality above 0; the
/// client's own preference order between br and gzip is not followed, since every client that accepts both
/// decodes both and brotli is smaller.
pub fn negotiate(request_headers: &HeaderMap, len: usize) -> Coding {
    if len < MIN_COMPRESSED_BODY {
        return Coding::Identity;
    }
    let mut brotli = None;
    let mut gzip = None;
    let mut any = None;
    for value in request_headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for entry in value.split(',') {
            let mut parts = entry.split(';');
            let name = parts.next().unwrap_or("").trim();
            let quality = parts
                .find_map(|param| {
                    let (key, value) = param.split_once('=')?;
                    (key.trim().eq_ignore_ascii_case("q"))
                        .then(|| value.trim().parse::<f32>().ok())?
                })
                .unwrap_or(1.0);
            let accepted = quality > 0.0;
            // Codings are case-insensitive; compared in place, since this runs on every request.
            if name.eq_ignore_ascii_case("br") {
                brotli = Some(accepted);
            } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(accepted);
            } else if name == "*" {
                any = Some(accepted);
            }
        }
    }
    // A coding named explicitly wins over `*`.
    if brotli.or(any) == Some(true) {
        Coding::Brotli
    } else if gzip.or(any) == Some(true) {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn negotiation_prefers_brotli_and_honours_zero_quality() {
        let big = MIN_COMPRESSED_BODY;
        assert_eq!(negotiate(&accept("gzip, deflate, br"), big), Coding::Brotli);
        assert_eq!(negotiate(&accept("gzip, deflate"), big), Coding::Gzip);
        assert_eq!(negotiate(&accept("br;q=0, gzip;q=0.5"), big), Coding::Gzip);
        assert_eq!(negotiate(&accept("*;q=0.1"), big), Coding::Brotli);
        assert_eq!(negotiate(&accept("*, br;q=0"), big), Coding::Gzip);
        assert_eq!(negotiate(&accept("identity"), big), Coding::Identity);
        assert_eq!(negotiate(&accept("BR"), big), Coding::Brotli);
        assert_eq!(negotiate(&HeaderMap::new(), big), Coding::Identity);
        assert_eq!(negotiate(&accept("br"), big - 1), Coding::Identity, "too small to pay");
    }

    #[test]
    fn compressed_bodies_decode_to_the_original() {
        let body: Vec<u8> =
            (0..4_000).flat_map(|i: u32| format!("{{\"lot\":{i}}},").into_bytes()).collect();
        let gzip = Coding::Gzip.encode(&body);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..]).read_to_end(&mut decoded).unwrap();
        assert_eq!(decoded, body);
        let brotli = Coding::Brotli.encode(&body);
        let mut decoded = Vec::new();
        brotli::Decompressor::new(&brotli[..], 4096).read_to_end(&mut decoded).unwrap();
        assert_eq!(decoded, body);
        assert!(brotli.len() < body.len() / 4 && gzip.len() < body.len() / 4);
    }
}
