//! The record of checks a commit passed: `cargo xtask ci` writes it (`<target>/ci/report.json`: every stage
//! with its result, duration and test counts, the commit and tree it ran on, the CI run when the platform
//! names one), and `cargo xtask release` publishes only with a passing report for exactly the commit and tree
//! it releases, copying it into `release.json` and the SLSA provenance.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use crate::stages::{Outcome, Record};

/// The report's format version.
const FORMAT: u32 = 1;

/// Which source the checks ran on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub commit: String,
    /// `HEAD^{tree}`: the content, whatever the commit's metadata.
    pub tree: String,
    /// Tracked files differed from the commit, so the checks did not run on exactly it.
    pub dirty: bool,
}

impl Source {
    /// The checkout's HEAD and whether tracked files differ from it.
    pub fn of_checkout(sh: &Shell) -> anyhow::Result<Source> {
        Ok(Source {
            commit: cmd!(sh, "git rev-parse HEAD").quiet().read()?,
            tree: {
                let tree = "HEAD^{tree}";
                cmd!(sh, "git rev-parse {tree}").quiet().read()?
            },
            dirty: !cmd!(sh, "git status --porcelain --untracked-files=no")
                .quiet()
                .read()?
                .is_empty(),
        })
    }
}

/// The CI run that produced a report, when the platform says (GitHub Actions, GitLab CI, or any CI that sets
/// `CI_RUN_ID` and `CI_RUN_URL`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiRun {
    pub platform: String,
    pub id: String,
    pub url: Option<String>,
}

impl CiRun {
    pub fn from_environment() -> Option<CiRun> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        if let Some(id) = var("GITHUB_RUN_ID") {
            let url = match (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY")) {
                (Some(server), Some(repository)) => {
                    Some(format!("{server}/{repository}/actions/runs/{id}"))
                }
                _ => None,
            };
            return Some(CiRun { platform: "github-actions".to_owned(), id, url });
        }
        if let Some(id) = var("CI_PIPELINE_ID") {
            return Some(CiRun {
                platform: "gitlab-ci".to_owned(),
                id,
                url: var("CI_PIPELINE_URL"),
            });
        }
        var("CI_RUN_ID").map(|id| CiRun {
            platform: var("CI_PLATFORM").unwrap_or_else(|| "ci".to_owned()),
            id,
            url: var("CI_RUN_URL"),
        })
    }
}

/// `cargo xtask ci`'s report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub format: u32,
    pub source: Source,
    pub toolchain: String,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: String,
    pub passed: bool,
    pub ci_run: Option<CiRun>,
    pub stages: Vec<Record>,
}

impl Report {
    pub fn new(
        source: Source,
        toolchain: String,
        started_at: jiff::Timestamp,
        stages: &[Record],
    ) -> Report {
        Report {
            format: FORMAT,
            source,
            toolchain,
            started_at: started_at.to_string(),
            finished_at: jiff::Timestamp::now().to_string(),
            passed: stages.iter().all(|stage| stage.result == Outcome::Passed),
            ci_run: CiRun::from_environment(),
            stages: stages.to_vec(),
        }
    }

    /// Why this report does not let `source` be released, if it does not.
    pub fn unusable_for(&self, source: &Source) -> Option<String> {
        if self.format != FORMAT {
            return Some(format!("it has format {}, this tool writes {FORMAT}", self.format));
        }
        if self.source.commit != source.commit || self.source.tree != source.tree {
            return Some(format!(
                "it is for commit {} (tree {}), not {} (tree {})",
                self.source.commit, self.source.tree, source.commit, source.tree
            ));
        }
        if self.source.dirty {
            return Some("the checks ran on uncommitted changes".to_owned());
        }
        if !self.passed {
            let failed: Vec<&str> = self
                .stages
                .iter()
                .filter(|stage| stage.result != Outcome::Passed)
                .map(|stage| stage.name.as_str())
                .collect();
            return Some(format!("it did not pass ({})", failed.join(", ")));
        }
        None
    }
}

/// Where `cargo xtask ci` writes its report.
pub fn default_path() -> PathBuf {
    crate::target_dir().join("ci").join("report.json")
}

pub fn write(path: &Path, report: &Report) -> anyhow::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(report)?;
    bytes.push(b'\n');
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(bytes)
}

/// The report at `path` and its bytes, when there is one that can be read.
pub fn read(path: &Path) -> anyhow::Result<Option<(Report, Vec<u8>)>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let report = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a CI report", path.display()))?;
    Ok(Some((report, bytes)))
}

/// Test counts from nextest's JUnit report: `<testsuites tests="N" failures="F" errors="E" …>`.
pub fn junit_counts(xml: &str) -> Option<crate::stages::TestCounts> {
    let start = xml.find("<testsuites")?;
    let tag = &xml[start..start + xml[start..].find('>')?];
    let attribute = |name: &str| -> Option<u64> {
        let marker = format!(" {name}=\"");
        let from = tag.find(&marker)? + marker.len();
        tag[from..].split('"').next()?.parse().ok()
    };
    let run = attribute("tests")?;
    let failed = attribute("failures").unwrap_or(0) + attribute("errors").unwrap_or(0);
    Some(crate::stages::TestCounts { run, passed: run.saturating_sub(failed), failed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::TestCounts;

    fn source(commit: &str) -> Source {
        Source { commit: commit.to_owned(), tree: format!("tree-of-{commit}"), dirty: false }
    }

    fn stage(name: &'static str, result: Outcome) -> Record {
        Record {
            name: name.to_owned(),
            result,
            duration_ms: 10,
            detail: String::new(),
            tests: None,
        }
    }

    #[test]
    fn only_a_passing_report_of_the_same_commit_and_tree_releases() {
        let passing = Report::new(
            source("abc"),
            "rustc 1.95.0".to_owned(),
            jiff::Timestamp::now(),
            &[stage("fmt", Outcome::Passed), stage("tests", Outcome::Passed)],
        );
        assert_eq!(passing.unusable_for(&source("abc")), None);
        let other = passing.unusable_for(&source("def")).unwrap();
        assert!(other.contains("it is for commit abc"), "{other}");
        let mut retreed = source("abc");
        retreed.tree = "another".to_owned();
        assert!(passing.unusable_for(&retreed).is_some());
        let mut dirty = passing.clone();
        dirty.source.dirty = true;
        assert!(dirty.unusable_for(&source("abc")).unwrap().contains("uncommitted"));
        let failing = Report::new(
            source("abc"),
            "rustc 1.95.0".to_owned(),
            jiff::Timestamp::now(),
            &[stage("fmt", Outcome::Passed), stage("clippy", Outcome::Failed)],
        );
        assert!(!failing.passed);
        assert_eq!(failing.unusable_for(&source("abc")).unwrap(), "it did not pass (clippy)");
    }

    #[test]
    fn test_counts_come_from_the_junit_report() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="331" failures="2" errors="1" uuid="x" timestamp="2026-12-01T20:00:00Z" time="47.1">
<testsuite name="api::it" tests="3"></testsuite></testsuites>"#;
        assert_eq!(junit_counts(xml), Some(TestCounts { run: 331, passed: 328, failed: 3 }));
        assert_eq!(junit_counts("<html/>"), None);
    }
}
