//! Version 2 of the app-facing API: the current contract.
//!
//! Rules within this version (checked against the released baselines by `cargo xtask contracts`): never remove,
//! rename or retype a field; never make a field nullable or optional; add only optional response fields and
//! optional request fields; closed enums never gain values.

mod common;
mod config;
mod error;
mod forecast;
mod home;
mod installations;
mod parks;
mod status;
mod widgets;

pub use common::*;
pub use config::*;
pub use error::*;
pub use forecast::*;
pub use home::*;
pub use installations::*;
pub use parks::*;
pub use status::*;
pub use widgets::*;
