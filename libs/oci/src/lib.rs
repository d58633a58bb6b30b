//! Reproducible OCI images without a daemon or a base image, for the release path (`cargo xtask images`,
//! `cargo xtask release`).
//!
//! - [`digest`]: `sha256:<hex>`, parsed once.
//! - [`layer`]: deterministic tar + gzip layers (the shared base layer, a binary's layer) and reading one back.
//! - [`image`]: OCI image-spec objects and the image layout on disk, with `fsck`.
//! - [`registry`]: pushing a layout through the distribution API, tag last.
//! - [`auth`]: registry credentials (environment, docker config) and the answers to `401` challenges.

pub mod auth;
pub mod digest;
pub mod image;
pub mod layer;
pub mod registry;

pub use digest::Digest;
