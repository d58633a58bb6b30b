//! The read model: everything the app and widgets are shown, as one [`Snapshot`] read from PostgreSQL in a
//! handful of queries, and the functions that render it into `contracts` bodies.
//!
//! The split matters for honesty: a snapshot holds *facts* (values with their observation and fetch times,
//! and the sources' health at build time), never freshness states. States are computed by [`freshness`] at
//! the moment a body is rendered, so a snapshot served from a cache minutes later still says `stale` when a
//! value has become stale. [`Snapshot::next_transition`] tells caches when a rendered body stops being
//! correct.
//!
//! - [`snapshot`]: the data types and [`snapshot::load`].
//! - [`freshness`]: per-source thresholds and the assessment of one value.
//! - [`render`]: contract bodies for every route.

pub mod freshness;
pub mod render;
pub mod snapshot;

pub use snapshot::Snapshot;
