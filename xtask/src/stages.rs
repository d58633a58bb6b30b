//! The one stage runner of `cargo xtask ci`, `release` and `contracts`: a line when a stage starts and one when
//! it ends, with its duration and what it found, and a [`Record`] of each for the reports they write.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// How a stage ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What one stage did (`release.json`'s `checks[]`, the CI report's `stages[]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    pub result: Outcome,
    pub duration_ms: u64,
    pub detail: String,
    /// For a stage that ran tests: how many ran, passed and failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCounts>,
}

/// A test run's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCounts {
    pub run: u64,
    pub passed: u64,
    pub failed: u64,
}

/// Runs and times stages, printing `<label>: [n/total] <name> …` as it goes.
#[derive(Debug)]
pub struct Stages {
    label: &'static str,
    total: usize,
    pub records: Vec<Record>,
}

impl Stages {
    pub fn new(label: &'static str, total: usize) -> Stages {
        Stages { label, total, records: Vec::new() }
    }

    /// Runs one stage; its error (with the stage named) ends the caller's sequence when it returns it.
    pub fn run<T>(
        &mut self,
        name: &'static str,
        body: impl FnOnce() -> anyhow::Result<(T, String)>,
    ) -> anyhow::Result<T> {
        let (label, total, number) = (self.label, self.total, self.records.len() + 1);
        eprintln!("{label}: [{number}/{total}] {name} …");
        let started = Instant::now();
        let outcome = body();
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let seconds = duration_ms as f64 / 1000.0;
        match outcome {
            Ok((value, detail)) => {
                let shown = if detail.is_empty() { "ok".to_owned() } else { detail.clone() };
                eprintln!("{label}: [{number}/{total}] {name}: {shown} ({seconds:.1} s)");
                self.records.push(Record {
                    name: name.to_owned(),
                    result: Outcome::Passed,
                    duration_ms,
                    detail,
                    tests: None,
                });
                Ok(value)
            }
            Err(error) => {
                eprintln!("{label}: [{number}/{total}] {name} FAILED after {seconds:.1} s");
                let detail = format!("{error:#}");
                self.records.push(Record {
                    name: name.to_owned(),
                    result: Outcome::Failed,
                    duration_ms,
                    detail,
                    tests: None,
                });
                Err(error.context(format!("{label} stage `{name}` failed")))
            }
        }
    }

    /// Runs a stage that reports nothing but success.
    pub fn check(
        &mut self,
        name: &'static str,
        body: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.run(name, || body().map(|()| ((), String::new())))
    }

    /// Records a stage that did not run, and why.
    pub fn skip(&mut self, name: &'static str, why: &str) {
        let (label, total, number) = (self.label, self.total, self.records.len() + 1);
        eprintln!("{label}: [{number}/{total}] {name}: skipped ({why})");
        let record = Record {
            name: name.to_owned(),
            result: Outcome::Skipped,
            duration_ms: 0,
            detail: why.to_owned(),
            tests: None,
        };
        self.records.push(record);
    }

    /// Attaches test counts to the stage recorded last.
    pub fn set_tests(&mut self, counts: Option<TestCounts>) {
        if let Some(last) = self.records.last_mut() {
            last.tests = counts;
        }
    }

    /// Whether every stage that ran passed.
    pub fn passed(&self) -> bool {
        self.records.iter().all(|record| record.result != Outcome::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_recorded_in_order_with_their_outcome() {
        let mut stages = Stages::new("test", 3);
        assert_eq!(stages.run("one", || Ok((7, "seven".to_owned()))).unwrap(), 7);
        let failed = stages.check("two", || anyhow::bail!("broken")).unwrap_err();
        assert!(format!("{failed:#}").contains("test stage `two` failed: broken"), "{failed:#}");
        stages.skip("three", "not on main");
        let summary: Vec<(&str, Outcome, &str)> = stages
            .records
            .iter()
            .map(|record| (record.name.as_str(), record.result, record.detail.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("one", Outcome::Passed, "seven"),
                ("two", Outcome::Failed, "broken"),
                ("three", Outcome::Skipped, "not on main")
            ]
        );
        assert!(!stages.passed());
    }
}
