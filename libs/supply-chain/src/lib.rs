//! The records a release keeps about what it is made of and who made it:
//!
//! - [`advisories`]: the offline RustSec scan of `Cargo.lock` against a vendored snapshot, with a reviewed
//!   ignore file whose every entry has a reason and an expiry;
//! - [`sbom`]: CycloneDX 1.5 and SPDX 2.3 documents from a binary's embedded dependency list;
//! - [`signing`]: cosign-compatible ECDSA P-256 signatures and DSSE envelopes;
//! - [`provenance`]: the SLSA v1 provenance statement.

pub mod advisories;
pub mod provenance;
pub mod sbom;
pub mod signing;
