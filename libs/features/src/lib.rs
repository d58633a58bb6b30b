//! Server feature switches per app build: the per-environment features file
//! (`kustomize/overlays/<env>/features.toml`, mounted into the api from a ConfigMap) parsed once into typed
//! rules, and the decision for one calling build and installation.
//!
//! - `file.rs`: [`Features`] and its parts, read from TOML with every check a reviewer would otherwise have
//!   to make (unknown keys, switch names, empty or inverted ranges, percentages outside 0–100, a recommended
//!   build below the minimum). The api and `cargo xtask manifests` read the file with these same types.
//! - `decide.rs`: which switches are on for a [`Client`], with installations bucketed by a stable hash.
//! - `version.rs`: [`DottedNumber`], the builds and versions both the file and the app's headers use.

mod decide;
mod file;
mod version;

pub use decide::{Client, Decision, bucket};
pub use file::{Features, FeaturesError, Percent, Range, Rule, Switch, SwitchName};
pub use version::DottedNumber;
