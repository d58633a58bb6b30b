//! SLSA v1 build provenance as an in-toto statement: which images were built, from which commit, with which
//! toolchain, lockfile and advisory snapshot, by which command. Signed by the release key in a DSSE envelope.

use serde_json::{Value, json};

/// The build type we own and document (README, "Releases"): `cargo xtask release` on one machine.
pub const BUILD_TYPE: &str = "https://hangangjari.app/slsa/cargo-xtask-release/v1";

/// The statement's predicate type, which the cluster's image verification policy requires.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// One built image.
#[derive(Clone, Debug)]
pub struct Subject {
    pub name: String,
    /// `sha256:…` of the image index.
    pub digest: String,
}

/// An input the build resolved, pinned by digest or version.
#[derive(Clone, Debug)]
pub struct Dependency {
    pub uri: String,
    /// `(algorithm, value)`, e.g. `("sha256", "…")` or `("gitCommit", "…")`.
    pub digest: (String, String),
}

/// Everything the statement records.
#[derive(Clone, Debug)]
pub struct Provenance {
    pub subjects: Vec<Subject>,
    /// `git+<url>@refs/heads/main`.
    pub source: String,
    pub commit: String,
    pub arguments: Vec<String>,
    pub dependencies: Vec<Dependency>,
    /// The checks the source passed before the build (the CI report's summary), as
    /// `internalParameters.checks`.
    pub checks: Option<Value>,
    pub release_id: String,
    pub builder_id: String,
    /// RFC 3339.
    pub started_on: String,
    pub finished_on: String,
}

impl Provenance {
    pub fn statement(&self) -> Value {
        let subjects: Vec<Value> = self
            .subjects
            .iter()
            .map(|subject| {
                json!({"name": subject.name,
                       "digest": {"sha256": subject.digest.trim_start_matches("sha256:")}})
            })
            .collect();
        let mut resolved = vec![json!({"uri": self.source, "digest": {"gitCommit": self.commit}})];
        resolved.extend(self.dependencies.iter().map(|dependency| {
            json!({"uri": dependency.uri, "digest": {dependency.digest.0.clone(): dependency.digest.1}})
        }));
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": subjects,
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {"source": self.source, "revision": self.commit, "args": self.arguments},
                    "internalParameters": {
                        "target": "x86_64-unknown-linux-gnu",
                        "rustflags": "-C target-feature=+crt-static",
                        "checks": self.checks,
                    },
                    "resolvedDependencies": resolved,
                },
                "runDetails": {
                    "builder": {"id": self.builder_id},
                    "metadata": {
                        "invocationId": self.release_id,
                        "startedOn": self.started_on,
                        "finishedOn": self.finished_on,
                    },
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_names_subjects_source_and_inputs() {
        let provenance = Provenance {
            subjects: vec![Subject {
                name: "hangang-api".into(),
                digest: format!("sha256:{}", "a".repeat(64)),
            }],
            source: "git+file:///work/main@refs/heads/main".into(),
            commit: "c".repeat(40),
            arguments: vec!["release".into(), "--dry-run".into()],
            dependencies: vec![Dependency {
                uri: "file:Cargo.lock".into(),
                digest: ("sha256".into(), "b".repeat(64)),
            }],
            checks: Some(json!({"stages": [{"name": "tests", "result": "passed"}]})),
            release_id: "2026.11.27-1-cccccccc".into(),
            builder_id: "https://hangangjari.app/builders/local".into(),
            started_on: "2026-11-27T12:00:00Z".into(),
            finished_on: "2026-11-27T12:01:00Z".into(),
        };
        let statement = provenance.statement();
        assert_eq!(statement["subject"][0]["digest"]["sha256"], "a".repeat(64));
        let resolved = &statement["predicate"]["buildDefinition"]["resolvedDependencies"];
        assert_eq!(resolved[0]["digest"]["gitCommit"], "c".repeat(40));
        assert_eq!(resolved[1]["digest"]["sha256"], "b".repeat(64));
        let checks = &statement["predicate"]["buildDefinition"]["internalParameters"]["checks"];
        assert_eq!(checks["stages"][0]["result"], "passed");
        assert_eq!(
            statement["predicate"]["runDetails"]["metadata"]["invocationId"],
            "2026.11.27-1-cccccccc"
        );
    }
}
