//! Collectors end to end: the replay upstream speaking the real formats, a real PostgreSQL, every outcome
//! class, nothing stored before lost.

mod cycle;
mod dispatch;
mod faults;
mod honesty;
mod leader;
mod retention;
mod support;
mod translations;
mod untrusted;
