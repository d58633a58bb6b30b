//! `cargo xtask bench <name>`: runs one benchmark of `tests/examples/bench_<name>.rs` (the one home of the
//! benchmarks: the crate that links every service), built in release:
//!
//! - `api`: the hot path against nginx serving the same bytes, a fixed-rate latency run, the cold rebuild and
//!   peak memory (needs `wrk`, `nginx`, `psql`);
//! - `ingest`: a full collection cycle, history inserts, change-to-visible;
//! - `push`: fan-out through the pipeline to the fake APNs;
//! - `forecast`: the rollup and refresh against 90 days of simulated history;
//! - `e2e`: the whole system as processes under a steady load (`--seconds` for a soak);
//! - `growth`: the hot operations at a year of data against a day of it (every ratio at most 2×).

use anyhow::bail;
use xshell::{Shell, cmd};

/// The benchmarks there are.
pub const BENCHMARKS: [&str; 6] = ["api", "ingest", "push", "forecast", "e2e", "growth"];

pub fn run(sh: &Shell, target: &str, e2e_seconds: u64) -> anyhow::Result<()> {
    if !BENCHMARKS.contains(&target) {
        bail!("unknown benchmark `{target}`; available: {}", BENCHMARKS.join(", "));
    }
    let example = format!("bench_{target}");
    let seconds = e2e_seconds.to_string();
    let args: &[&str] = if target == "e2e" { &["--seconds", &seconds] } else { &[] };
    cmd!(sh, "cargo run --release --locked -p tests --example {example} -- {args...}").run()?;
    Ok(())
}
