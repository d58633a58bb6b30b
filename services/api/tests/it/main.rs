//! The api against real PostgreSQL and Redis: a fresh database and Redis key prefix per test, a manual clock,
//! requests through the full router (middleware included).

mod app;
mod app_versions;
mod config;
mod faults;
mod freshness;
mod inputs;
mod rollout;
mod routes;
mod serving;
