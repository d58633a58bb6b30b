//! `cargo xtask ci`: every check CI runs, in order, one line per stage with its duration.
//!
//! Warnings are denied through clippy (`-- -D warnings` covers rustc's lints on every target) rather than
//! `RUSTFLAGS`, which would change every dependency's fingerprint and rebuild the world on a 2-core machine.
//! Snapshot tests run with `INSTA_UPDATE=no`: a changed snapshot fails instead of writing a `.snap.new`.
//! Stages stop at the first failure so the error is the last thing printed. Tests run with
//! `cargo nextest` when it is installed (parallel, per-test isolation; its `ci` profile writes the JUnit report
//! the counts come from) and `cargo test` otherwise. Passed or not, the run leaves its report
//! ([`crate::checks`]) at `<target>/ci/report.json`, the record `cargo xtask release` requires.

use std::time::Instant;

use xshell::{Shell, cmd};

use crate::{
    checks::{self, Report, Source},
    codegen, contracts, manifests, migrations, openapi_lint,
    stages::Stages,
    workflows,
};

/// Runs every stage and writes the report, whether or not they pass; returns the report's path.
pub fn run(sh: &Shell) -> anyhow::Result<std::path::PathBuf> {
    let started = Instant::now();
    let started_at = jiff::Timestamp::now();
    let source = Source::of_checkout(sh)?;
    let mut stages = Stages::new("ci", 10);
    let outcome = run_stages(sh, &mut stages);
    let toolchain = cmd!(sh, "rustc -V").quiet().read()?;
    let report = Report::new(source, toolchain, started_at, &stages.records);
    let path = checks::default_path();
    checks::write(&path, &report)?;
    outcome?;
    eprintln!(
        "ci: all stages passed in {:.1}s; report in {}",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(path)
}

fn run_stages(sh: &Shell, stages: &mut Stages) -> anyhow::Result<()> {
    stages.check("fmt", || Ok(cmd!(sh, "cargo fmt --all --check").run()?))?;
    stages.check("clippy", || {
        Ok(cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?)
    })?;
    stages.check("codegen drift", || codegen::run(codegen::Mode::Check))?;
    stages.check("migration lint", || migration_lint(sh))?;
    stages.run("migration kinds", || Ok(((), migrations::check(&crate::project_root())?)))?;
    stages.check("contracts", contracts::run)?;
    stages.run("openapi lint", || Ok(((), openapi_lint::check(sh)?)))?;
    stages.check("manifests", || manifests::run(sh))?;
    stages.run("workflow lint", || Ok(((), workflows::check(sh)?)))?;
    // Tests need PostgreSQL and Redis; default to the local servers `.ci/run` starts.
    let _database = sh.push_env(
        "DATABASE_URL",
        std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    );
    let _redis = sh.push_env(
        "REDIS_URL",
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    );
    let mut counts = None;
    let tests = stages.run("tests", || {
        let has_nextest = cmd!(sh, "cargo nextest --version")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok();
        if !has_nextest {
            cmd!(sh, "cargo test --workspace --locked --no-fail-fast")
                .env("INSTA_UPDATE", "no")
                .run()?;
            return Ok(((), "cargo test (nextest is not installed: no counts)".to_owned()));
        }
        // nextest keeps its store under the workspace (`target/nextest`), whatever CARGO_TARGET_DIR says.
        let junit = crate::project_root().join("target/nextest/ci/junit.xml");
        let _ = std::fs::remove_file(&junit);
        let run = cmd!(sh, "cargo nextest run --workspace --locked --no-fail-fast --profile ci")
            .env("INSTA_UPDATE", "no")
            .run();
        counts = std::fs::read_to_string(&junit).ok().as_deref().and_then(checks::junit_counts);
        run?;
        Ok((
            (),
            counts.map_or_else(
                || "passed (the JUnit report had no counts)".to_owned(),
                |counts| {
                    format!(
                        "{} tests run: {} passed, {} failed",
                        counts.run, counts.passed, counts.failed
                    )
                },
            ),
        ))
    });
    stages.set_tests(counts);
    tests
}

/// The squawk version CI installs (`pip install squawk-cli==…`).
pub const SQUAWK_VERSION: &str = "2.70.0";

/// Lints every migration with squawk under `.squawk.toml` (excluded rules are justified there).
fn migration_lint(sh: &Shell) -> anyhow::Result<()> {
    if cmd!(sh, "squawk --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        anyhow::bail!(
            "squawk is not installed: `pip install squawk-cli=={SQUAWK_VERSION}` (.ci/run does this)"
        );
    }
    let migrations: Vec<String> = std::fs::read_dir("libs/migrate/migrations")?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| path.display().to_string())
        .collect();
    cmd!(sh, "squawk --config .squawk.toml {migrations...}").run()?;
    Ok(())
}
