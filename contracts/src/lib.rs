//! Wire contracts of Hangangjari: the JSON bodies the iOS app and widgets read and send, and the gRPC types the
//! services exchange.
//!
//! # Layout
//!
//! - [`v1`] is frozen: the home-summary shape that old app builds decode. It is never edited; a break means a
//!   new version module.
//! - [`v2`] is current. Within a version only additive, optional response fields and optional request fields
//!   may appear (see `ARCHITECTURE.md`, "Contract rules").
//! - [`time`], [`freshness`] and [`enums`] hold the conventions every body follows: whole-second UTC
//!   timestamps, per-value freshness (and each source's thresholds), and enums that are explicitly open (may
//!   grow, `unknown` fallback) or closed (a new value is a breaking change). [`seoul`] is Seoul's clock.
//! - [`catalogue`] lists every public DTO with its direction and endpoints; schemas, examples, snapshots and
//!   the compatibility checker are all driven from it, so a DTO cannot be forgotten.
//! - [`retirement`] is the schedule of API versions being retired (`Deprecation`/`Sunset` on their responses)
//!   and the rule by which a released version may stop being served (its sunset passed, its recorded usage
//!   below a threshold), shared by the api and the compatibility gate.
//! - [`localization`] names every string key the server emits for the app's String Catalog.
//! - [`proto`] holds the generated gRPC code (`cargo xtask codegen` refreshes it from `proto/`); [`fact`] the
//!   facts ingest queues for push, typed from ingest's store to push's decisions (services only, not the app).
//!
//! This crate is plain data: no HTTP framework, database or cache types appear here.

pub mod app_release;
pub mod catalogue;
pub mod enums;
pub mod example;
pub mod fact;
pub mod freshness;
pub mod localization;
pub mod openapi;
#[cfg(feature = "grpc")]
pub mod proto;
pub mod retirement;
pub mod seoul;
pub mod time;
pub mod v1;
pub mod v2;

pub use example::Example;
pub use time::Timestamp;
