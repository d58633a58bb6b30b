//! `cargo xtask fuzz <parser> --time <seconds>`: runs a libFuzzer target of `libs/upstream` through
//! cargo-fuzz, seeded with that parser's fixtures.
//!
//! The toolchain here is stable, so cargo-fuzz runs with `RUSTC_BOOTSTRAP=1` and `--sanitizer none`:
//! AddressSanitizer needs nightly's instrumented standard library, and the parsers are safe Rust
//! (`unsafe_code = "forbid"`), so coverage-guided search for panics is what matters. cargo-fuzz is installed
//! from the Rust package registry when missing.

use std::path::Path;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// Each target and the fixture folder that seeds it.
const TARGETS: [(&str, &str); 5] = [
    ("parking_portal", "parking_portal"),
    ("citydata", "citydata"),
    ("events", "events"),
    ("kma", "kma"),
    ("notices", "notices"),
];

pub fn run(sh: &Shell, parser: &str, seconds: u32) -> anyhow::Result<()> {
    let Some((target, fixtures)) = TARGETS.iter().find(|(name, _)| *name == parser) else {
        bail!("unknown parser `{parser}`; one of: {}", TARGETS.map(|(name, _)| name).join(", "));
    };
    if cmd!(sh, "cargo fuzz --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        eprintln!("fuzz: installing cargo-fuzz");
        cmd!(sh, "cargo install cargo-fuzz --locked").run()?;
    }
    let crate_dir = crate::project_root().join("libs/upstream");
    let corpus = crate_dir.join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    seed(&crate_dir.join("fixtures").join(fixtures), &corpus)?;
    let _dir = sh.push_dir(&crate_dir);
    let _bootstrap = sh.push_env("RUSTC_BOOTSTRAP", "1");
    let target_dir = crate::project_root().join("target/fuzz");
    let _target_dir = sh.push_env("CARGO_TARGET_DIR", &target_dir);
    let max_time = format!("-max_total_time={seconds}");
    cmd!(sh, "cargo fuzz run {target} --sanitizer none {corpus} -- {max_time}")
        .run()
        .with_context(|| format!("fuzzing {target} found a failure; the input is in libs/upstream/fuzz/artifacts/{target}"))?;
    Ok(())
}

fn seed(fixtures: &Path, corpus: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(fixtures)
        .with_context(|| format!("no fixtures in {}", fixtures.display()))?
    {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, corpus.join(name))?;
        }
    }
    Ok(())
}
