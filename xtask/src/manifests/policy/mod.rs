//! The project's deployment policies over rendered manifests: each rule has a name, checks one thing, and says
//! which object broke it and how. Schema validity is checked separately ([`super::schema`]).
//!
//! The rules mirror what kube-linter, kube-score and Polaris check by default, plus what only we know: images
//! pinned to *this* release's digests, pods running as the images' user, the release id, commit and environment
//! reaching every container (and the release labelling every pod), and the Argo CD order of `super::waves`.

mod rules;
#[cfg(test)]
mod tests;
mod verification;

use std::fmt;

use serde_json::Value;

use super::{ReleaseImages, object::Object};

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// `Kind/name` of the object.
    pub object: String,
    pub rule: &'static str,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: [{}] {}", self.object, self.rule, self.message)
    }
}

/// Collects violations while the rules run.
#[derive(Debug, Default)]
struct Findings(Vec<Violation>);

impl Findings {
    fn add(&mut self, object: &Object<'_>, rule: &'static str, message: impl Into<String>) {
        self.0.push(Violation { object: object.id(), rule, message: message.into() });
    }

    fn add_container(
        &mut self,
        object: &Object<'_>,
        container: &str,
        rule: &'static str,
        message: impl fmt::Display,
    ) {
        self.0.push(Violation {
            object: object.id(),
            rule,
            message: format!("container `{container}`: {message}"),
        });
    }
}

/// Every policy over one environment's rendered objects.
pub fn check(objects: &[Value], release: &ReleaseImages, environment: &str) -> Vec<Violation> {
    let objects: Vec<Object<'_>> = objects.iter().map(Object::new).collect();
    let mut findings = Findings::default();
    for object in &objects {
        rules::sync_order(object, &mut findings);
        rules::no_secret_values(object, &mut findings);
        if object.is_workload() {
            rules::hooks_are_disposable_jobs(object, &mut findings);
            rules::container_security(object, &mut findings);
            rules::resources(object, &mut findings);
            rules::probes(object, &mut findings);
            rules::graceful_termination(object, &mut findings);
            rules::images(object, release, &mut findings);
            rules::release_identity(object, &objects, release, environment, &mut findings);
        }
        if object.kind() == "Service" {
            rules::service_selects_workload(object, &objects, &mut findings);
        }
    }
    rules::network_policies(&objects, &mut findings);
    verification::image_verification(&objects, release, environment, &mut findings);
    findings.0
}

/// The Argo CD objects: every Application deploys from the deploy repository's environment directory, within
/// the project, and production never syncs by itself; the project lets the environments own their image
/// verification policies.
pub fn check_argocd(objects: &[Value]) -> Vec<Violation> {
    let mut findings = Findings::default();
    for object in objects.iter().map(Object::new) {
        rules::argocd_application(&object, &mut findings);
        rules::argocd_project(&object, &mut findings);
    }
    findings.0
}
