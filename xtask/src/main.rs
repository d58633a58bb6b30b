//! `cargo xtask`: the project's automation, in Rust so it runs the same on every machine.
//!
//! - `ci` runs every check CI runs, in CI's order, printing one line per stage with its duration.
//! - `contracts` runs only the contract stages (API shape against released baselines, protobuf breaking
//!   changes, localization keys): fast, no full test run.
//! - `codegen` regenerates committed artifacts (gRPC code, descriptor set, JSON Schema documents);
//!   `codegen --check` fails when they are stale.
//! - `manifests` renders the kustomize overlays and validates them (schemas and deployment policies).

#![allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "a command-line tool: printing is its interface"
)]

mod bench;
mod ci;
mod codegen;
mod contracts;
mod dev;
mod fuzz;
mod manifests;

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
    /// Run every CI check in order: fmt, clippy (warnings denied), tests, codegen drift, contracts.
    Ci,
    /// Check the API and gRPC contracts against every released baseline, and the localization keys.
    Contracts,
    /// Run a benchmark and print its table (`api`: hot path vs nginx, fixed-rate latency, cold rebuild, RSS;
    /// `ingest`: collection cycle, history inserts, change-to-visible; `forecast`: rollup, refresh).
    Bench {
        /// What to measure.
        target: String,
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
    /// Regenerate committed artifacts (gRPC code, descriptor set, JSON Schema documents).
    Codegen {
        /// Do not write; fail if any committed artifact differs from what would be generated.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let sh = xshell::Shell::new()?;
    sh.change_dir(project_root());
    match cli.command {
        Command::Ci => ci::run(&sh),
        Command::Dev => dev::run(&sh),
        Command::Contracts => contracts::run(),
        Command::Bench { target } => bench::run(&sh, &target),
        Command::Eval { target } => match target.as_str() {
            // The seed and the scoring code live in services/forecast (examples/eval.rs); the data is regenerated.
            "forecast" => {
                Ok(cmd!(sh, "cargo run --release --locked -p forecast --example eval").run()?)
            }
            _ => anyhow::bail!("unknown evaluation `{target}`; available: forecast"),
        },
        Command::Fuzz { parser, time } => fuzz::run(&sh, &parser, time),
        Command::Manifests => manifests::run(&sh),
        Command::Codegen { check } => {
            codegen::run(if check { codegen::Mode::Check } else { codegen::Mode::Write })
        }
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}
