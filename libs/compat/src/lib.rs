//! Contract compatibility checks.
//!
//! - [`schema`] compares a version's current schema document (endpoints + DTO JSON Schemas, as
//!   `contracts::catalogue` produces it) with a released baseline, and classifies each difference by what it
//!   does to an iOS app that was built against the baseline and stays installed for months.
//! - [`proto`] compares the current protobuf `FileDescriptorSet` with a released one for wire and JSON
//!   compatibility between independently rolled services.
//!
//! Both return [`Finding`]s; a finding is either [`Verdict::Breaking`] (the check fails) or
//! [`Verdict::Allowed`] (reported, so reviewers see every change).

pub mod proto;
pub mod schema;

use std::fmt;

/// Whether a difference may ship within the same contract version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Breaking,
    Allowed,
}

/// One classified difference between a baseline and the current contract.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub verdict: Verdict,
    /// A stable rule id such as `response-property-removed`.
    pub rule: &'static str,
    /// Where: `v2 HomeSummary parks[].parking.available`, or `hangang.push.v1.Fact.kind`.
    pub location: String,
    /// What changed, in words.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Breaking => "BREAKING",
            Verdict::Allowed => "allowed",
        };
        write!(f, "{verdict} [{}] {}: {}", self.rule, self.location, self.detail)
    }
}

/// Findings that fail the check.
pub fn breaking(findings: &[Finding]) -> impl Iterator<Item = &Finding> {
    findings.iter().filter(|finding| finding.verdict == Verdict::Breaking)
}
