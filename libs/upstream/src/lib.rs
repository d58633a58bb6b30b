//! Parsers for the upstream formats, as pure functions over bytes: no I/O, no database, so they are tested
//! with fixtures in the real formats (`fixtures/`) and fuzzed (`fuzz/`, `cargo xtask fuzz <parser>`).
//!
//! Every parser returns its data or a [`outcome::Failure`] with a class; none panics on any input.

pub mod citydata;
pub mod events;
pub mod kma;
pub mod kst;
pub mod link;
pub mod markup;
pub mod notices;
pub mod outcome;
pub mod parking_portal;
pub mod seoul;
pub mod text;

/// A stable id from content: `prefix` + the first 16 hex digits of the SHA-256 of `key`.
pub fn content_id(prefix: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest: String =
        Sha256::digest(key.as_bytes()).iter().take(8).map(|byte| format!("{byte:02x}")).collect();
    format!("{prefix}-{digest}")
}
