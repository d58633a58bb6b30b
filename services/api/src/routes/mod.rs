//! Route handlers, one module per resource; `crate::router` lists every route.

pub mod config;
pub mod installations;
pub mod ops;
pub mod reads;
