//! End-to-end scenarios against the sandbox. One test binary; one module per scenario family.

mod alerts;
mod apns_faults;
mod app;
mod database_outage;
mod faults;
mod forecasts;
mod health;
mod honesty;
mod http;
mod leader;
mod outage_hour;
mod poll;
mod redis_outage;
mod restarts;
mod smoke;
mod traces;
mod visibility;
