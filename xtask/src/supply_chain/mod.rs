//! The supply-chain records of a release, made in process and offline: SBOMs (CycloneDX and SPDX from one
//! model), the advisory scan against the vendored RustSec snapshot, cosign-compatible signatures and SLSA
//! provenance.

pub mod advisories;
pub mod provenance;
pub mod sbom;
pub mod signing;
