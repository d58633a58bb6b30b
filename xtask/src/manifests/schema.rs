//! Validation of rendered manifests against the Kubernetes OpenAPI schemas, offline, with
//! `kubernetes-validate` (from the Python package index; it bundles the schemas of each minor version).

use std::{path::Path, process::Command};

use anyhow::Context;

/// The pinned validator; `.ci/run` installs this version.
pub const VALIDATOR: &str = "kubernetes-validate==1.37.0";

/// What the validator rejected, as it reported it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

/// Validates every object of `manifests` strictly (unknown fields are errors) against Kubernetes `version`.
/// `Ok(Err(rejected))` is a validation failure; `Err` means the validator could not run.
pub fn validate(manifests: &Path, version: &str) -> anyhow::Result<Result<(), Rejected>> {
    let output = Command::new("kubernetes-validate")
        .args(["--kubernetes-version", version, "--strict", "--quiet", "--no-warn"])
        .arg(manifests)
        .output()
        .with_context(|| {
            format!("cannot run `kubernetes-validate`; install it with `pip install {VALIDATOR}`")
        })?;
    if output.status.success() {
        return Ok(Ok(()));
    }
    let mut report = String::from_utf8_lossy(&output.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(Err(Rejected(format!(
        "schema validation against Kubernetes {version} failed:\n{}",
        report.trim_end()
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The validator must reject what the API server would: here a field that does not exist.
    #[test]
    fn rejects_an_unknown_field() {
        let dir = std::env::temp_dir().join(format!("hangang-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n";
        let bad =
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  selectr:\n    app: a\n";
        std::fs::write(dir.join("good.yaml"), good).unwrap();
        std::fs::write(dir.join("bad.yaml"), bad).unwrap();
        assert!(validate(&dir.join("good.yaml"), "1.32.0").unwrap().is_ok());
        let report = validate(&dir.join("bad.yaml"), "1.32.0").unwrap().unwrap_err();
        assert!(report.0.contains("selectr"), "{report}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
