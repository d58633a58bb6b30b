//! The committed OpenAPI documents (`contracts/openapi/*.json`), linted by Redocly CLI at the pinned version
//! with its recommended rules (`contracts/openapi/redocly.yaml`): a stage of `cargo xtask ci`.
//!
//! The stage allows no error, no warning and no ignored problem: a rule that does not fit is switched off in
//! the committed configuration with its reason, never left as a warning nobody reads or hidden in an ignore
//! file. Redocly's telemetry and update check are off, so the verdict needs no network.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

/// The Redocly CLI version CI installs (`npm install --global @redocly/cli@…`, by `.ci/run`).
pub const REDOCLY_VERSION: &str = "2.77.0";

/// Where the documents and the configuration are, relative to the workspace root.
pub const DOCUMENTS_DIR: &str = "contracts/openapi";
const CONFIG: &str = "contracts/openapi/redocly.yaml";

/// What Redocly counted for one document (`--format json` prints one object per document).
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Totals {
    pub errors: u64,
    pub warnings: u64,
    pub ignored: u64,
}

#[derive(Debug, Deserialize)]
struct Report {
    totals: Totals,
}

/// Lints every committed document; the stage's line.
pub fn check(sh: &Shell) -> anyhow::Result<String> {
    let root = crate::project_root();
    let documents = documents(&root.join(DOCUMENTS_DIR))?;
    let totals = lint(sh, &root.join(CONFIG), &documents)?;
    Ok(format!(
        "{} document(s): redocly {REDOCLY_VERSION} recommended rules, {} errors, {} warnings",
        documents.len(),
        totals.errors,
        totals.warnings
    ))
}

/// The `.json` documents of `dir`, sorted.
fn documents(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut documents: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    documents.sort();
    anyhow::ensure!(!documents.is_empty(), "{} holds no OpenAPI document", dir.display());
    Ok(documents)
}

/// Runs the pinned Redocly over `documents` under `config`; any problem, ignored ones included, is the error
/// (with Redocly's own report of it).
pub fn lint(sh: &Shell, config: &Path, documents: &[PathBuf]) -> anyhow::Result<Totals> {
    let install =
        format!("npm install --global @redocly/cli@{REDOCLY_VERSION} (.ci/run does this)");
    let _telemetry = sh.push_env("REDOCLY_TELEMETRY", "off");
    let _update_check = sh.push_env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true");
    let version = cmd!(sh, "redocly --version")
        .quiet()
        .ignore_stderr()
        .read()
        .with_context(|| format!("redocly is not installed: {install}"))?;
    if version.trim() != REDOCLY_VERSION {
        bail!("redocly is `{}`, CI pins {REDOCLY_VERSION}: {install}", version.trim());
    }
    let lint = |format: &str| {
        cmd!(sh, "redocly lint --config {config} --format {format} {documents...}")
            .quiet()
            .ignore_status()
            .output()
    };
    let output = lint("json")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let totals = sum(&stdout).with_context(|| {
        format!("redocly printed no report:\n{stdout}{}", String::from_utf8_lossy(&output.stderr))
    })?;
    if totals != Totals::default() || !output.status.success() {
        let readable = lint("stylish")?;
        bail!(
            "redocly found {} error(s), {} warning(s) and {} ignored problem(s) (switch a rule off in {CONFIG} \
             with its reason, never ignore it):\n{}",
            totals.errors,
            totals.warnings,
            totals.ignored,
            String::from_utf8_lossy(&readable.stdout)
        );
    }
    Ok(totals)
}

/// The totals of every report in Redocly's JSON output, added up.
fn sum(output: &str) -> anyhow::Result<Totals> {
    let mut totals = Totals::default();
    let mut reports = 0;
    for report in serde_json::Deserializer::from_str(output).into_iter::<Report>() {
        let report = report.context("unreadable redocly report")?;
        totals.errors += report.totals.errors;
        totals.warnings += report.totals.warnings;
        totals.ignored += report.totals.ignored;
        reports += 1;
    }
    anyhow::ensure!(reports > 0, "no report");
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_documents_pass_with_no_problem() {
        let line = check(&Shell::new().unwrap()).unwrap_or_else(|error| panic!("{error:#}"));
        assert!(line.ends_with("0 errors, 0 warnings"), "{line}");
    }

    /// Redocly really runs under the committed configuration: an operation without a summary or a security
    /// requirement, and a document without servers, are errors of the recommended rules.
    #[test]
    fn redocly_rejects_what_the_recommended_rules_forbid() {
        let dir = std::env::temp_dir().join(format!("hangang-openapi-lint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let document = dir.join("bare.json");
        let bare = serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "bare", "version": "v0"},
            "paths": {"/v0/thing": {"get": {
                "operationId": "get_thing",
                "responses": {"200": {"description": "ok"}, "4XX": {"description": "refused"}},
            }}},
        });
        std::fs::write(&document, bare.to_string()).unwrap();
        let config = crate::project_root().join(CONFIG);
        let error =
            format!("{:#}", lint(&Shell::new().unwrap(), &config, &[document]).unwrap_err());
        std::fs::remove_dir_all(&dir).unwrap();
        for rule in ["operation-summary", "security-defined", "no-empty-servers"] {
            assert!(error.contains(rule), "{rule} did not fire: {error}");
        }
    }

    #[test]
    fn reports_of_every_document_are_added_up() {
        let output = r#"{"totals": {"errors": 1, "warnings": 0, "ignored": 0}, "version": "x", "problems": []}
{"totals": {"errors": 2, "warnings": 3, "ignored": 1}, "version": "x", "problems": []}"#;
        assert_eq!(sum(output).unwrap(), Totals { errors: 3, warnings: 3, ignored: 1 });
        assert!(sum("").is_err(), "no report is not a pass");
    }

    /// .ci/run installs the version this file checks.
    #[test]
    fn ci_installs_the_pinned_redocly() {
        let run = std::fs::read_to_string(crate::project_root().join(".ci/run")).unwrap();
        let install =
            format!("npm install --global --no-fund --no-audit @redocly/cli@{REDOCLY_VERSION}");
        assert!(run.contains(&install), "{install} is not in .ci/run");
    }
}
