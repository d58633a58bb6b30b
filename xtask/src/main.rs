//! `cargo xtask`: the project's automation, in Rust so it runs the same on every machine.
//!
//! - `ci` runs every check CI runs, in CI's order, printing one line per stage with its duration.
//! - `contracts` runs only the contract stages (API shape against released baselines, protobuf breaking
//!   changes, localization keys): fast, no full test run.
//! - `codegen` regenerates committed artifacts (gRPC code, descriptor set, JSON Schema documents);
//!   `codegen --check` fails when they are stale.
//! - `manifests` renders the kustomize overlays and validates them (schemas and deployment policies).
//! - `history` reads the release ledger: what ran where and when, from the deploy repository and the
//!   rollout records.
//! - `release` / `rollback` / `lift-hold` publish a release (or roll back to one, or end a rollback's hold)
//!   through the deploy repository.
//! - `images` builds the four service images as reproducible OCI layouts and optionally pushes them.

#![allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "a command-line tool: printing is its interface"
)]

mod bench;
mod checks;
mod ci;
mod codegen;
mod contracts;
mod deploy;
mod dev;
mod dev_screen;
mod fuzz;
mod history;
mod manifests;
mod migrations;
mod openapi_lint;
mod promote;
mod release;
mod stages;
mod usage;
mod workflows;
mod workspace;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use xshell::cmd;

#[derive(Debug, Parser)]
#[command(about = "Hangangjari project automation", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system locally: replay upstream, migrated database, the four services.
    Dev,
    /// Run every CI check in order: fmt, clippy (warnings denied), codegen drift, migrations, contracts,
    /// the OpenAPI lint (Redocly), manifests, the workflow lint (actionlint and the release rules), tests.
    Ci,
    /// Check the API and gRPC contracts against every released baseline, and the localization keys; a
    /// released API version may stop being served only after its sunset with fewer than `--retire-below`
    /// recorded requests over 14 days. `contracts usage` prints who still calls each version and build.
    Contracts(contracts::Options),
    /// Run a benchmark and print its table (`api`: hot path vs nginx, fixed-rate latency, cold rebuild, RSS;
    /// `ingest`: collection cycle, history inserts, change-to-visible; `push`: fan-out to APNs; `forecast`:
    /// rollup, refresh; `e2e`: the whole system under steady load).
    Bench {
        /// What to measure.
        target: String,
        /// How long `e2e` keeps the load on (a soak: `--seconds 1800`).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Backtest a model on its seeded evaluation set and print the table (`forecast`).
    Eval {
        /// What to evaluate.
        target: String,
    },
    /// Fuzz an upstream parser with libFuzzer (parking_portal, citydata, events, kma, notices).
    Fuzz {
        parser: String,
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 60)]
        time: u32,
    },
    /// Render every kustomize overlay with `kubectl kustomize`, validate it against the Kubernetes 1.32 schemas
    /// and check the deployment policies (written under `target/manifests/<env>/`).
    Manifests,
    /// Build the static service binaries and one reproducible OCI image layout per service
    /// (`target/release-images/<service>/`), optionally push them, and print digests, sizes and timings.
    Images {
        /// Push to this registry, e.g. `http://127.0.0.1:5000` (plain http only on loopback).
        #[arg(long, value_name = "REGISTRY_URL")]
        push: Option<String>,
        /// Where to write the layouts, `bin/` and `images.json` (default: `<target dir>/release-images`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The tag and image version (default: `git-<12 hex of HEAD>`).
        #[arg(long)]
        release_id: Option<String>,
    },
    /// Release HEAD: advisory scan, contracts, static images, SBOMs, signatures, provenance, manifests with
    /// the real digests, push, release record, desired-state commit in the deploy repository. Only the
    /// protected branch publishes; `--dry-run` does everything else and leaves the results under
    /// `target/release/<release-id>/`.
    Release(release::pipeline::Options),
    /// Promote a release staging ran and smoke-checked to production: prints what it changes against what
    /// production runs (images, restarts, migrations, contract changes, config, risks), asks for the release id
    /// (or `--confirm`) and an `--ack` per risk, then writes production's desired state with `Promoted-By:`,
    /// `Acknowledged:` and `Staging-Smoke:` trailers and moves the `production` branch Argo CD follows. Every
    /// promotion and refusal is a line in environments/production/promotions.jsonl.
    Promote(promote::Options),
    /// Write an earlier release's desired state to the deploy repository as a new commit, after checking that
    /// no migration since stands in the way (a contract migration is refused before anything is written); the
    /// environments then hold there until a release of a newer commit or `lift-hold`.
    Rollback(release::pipeline::RollbackOptions),
    /// End a rollback's hold on an environment, recording who lifted it and why.
    LiftHold(release::pipeline::LiftHoldOptions),
    /// The release ledger: one line per rollout, newest first (when it started running, environment, release,
    /// commit, images and migrations it changed, deploy commit, smoke result), after one line per environment
    /// (desired release, the releases its processes report, drift). Joins the deploy repository with the
    /// rollout records in `DATABASE_URL` (or `--rollouts`); `--at`, `--digest`, `--commit`, `--explain`.
    History(history::Options),
    /// Scan Cargo.lock against the vendored RustSec advisory database (offline; fails on unreviewed
    /// vulnerabilities or a snapshot older than the limit).
    Audit {
        /// The oldest advisory snapshot accepted, in days.
        #[arg(long, default_value_t = supply_chain::advisories::DEFAULT_MAX_AGE_DAYS)]
        max_age_days: i64,
    },
    /// Print the workspace this run operates on (the checkout `cargo xtask` was run in).
    Root,
    /// Regenerate committed artifacts (gRPC code, descriptor set, JSON Schema documents).
    Codegen {
        /// Do not write; fail if any committed artifact differs from what would be generated.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    workspace::find()?;
    let sh = xshell::Shell::new()?;
    sh.change_dir(project_root());
    match cli.command {
        Command::Ci => ci::run(&sh).map(drop),
        Command::Dev => dev::run(&sh),
        Command::Contracts(options) => contracts::run_with(&options),
        Command::Bench { target, seconds } => bench::run(&sh, &target, seconds),
        Command::Eval { target } => match target.as_str() {
            // The seed and the scoring code live in services/forecast (examples/eval.rs); the data is regenerated.
            "forecast" => {
                Ok(cmd!(sh, "cargo run --release --locked -p forecast --example eval").run()?)
            }
            _ => anyhow::bail!("unknown evaluation `{target}`; available: forecast"),
        },
        Command::Fuzz { parser, time } => fuzz::run(&sh, &parser, time),
        Command::Manifests => manifests::run(&sh),
        Command::Release(options) => release::pipeline::run(&sh, &options),
        Command::Promote(options) => promote::run(&options),
        Command::Rollback(options) => release::pipeline::rollback(&sh, &options),
        Command::LiftHold(options) => release::pipeline::lift_hold(&sh, &options),
        Command::History(options) => history::run(&options),
        Command::Audit { max_age_days } => audit(max_age_days),
        Command::Images { push, out, release_id } => {
            release::run(&sh, release_id, out, push.as_deref())
        }
        Command::Root => {
            println!("{}", project_root().display());
            Ok(())
        }
        Command::Codegen { check } => {
            codegen::run(if check { codegen::Mode::Check } else { codegen::Mode::Write })
        }
    }
}

/// `cargo xtask audit`: the advisory scan alone, failing on a vulnerability that is not reviewed.
fn audit(max_age_days: i64) -> anyhow::Result<()> {
    use supply_chain::advisories::{ScanSettings, scan};
    let report = scan(&ScanSettings::for_project(&project_root(), max_age_days))?;
    println!("{report}");
    anyhow::ensure!(
        report.passed(),
        "{} unreviewed vulnerable package(s)",
        report.vulnerable.len()
    );
    Ok(())
}

/// The workspace root this run operates on, found at run time ([`workspace`]).
pub fn project_root() -> PathBuf {
    workspace::root().to_owned()
}

/// Cargo's target directory (honouring `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}
