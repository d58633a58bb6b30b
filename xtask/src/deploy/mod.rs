//! The desired state in the deploy repository (a separate git repository Argo CD reads), written only by
//! `cargo xtask release` and `cargo xtask rollback`.
//!
//! Layout of the deploy repository (everything here is generated; nothing else in the repository is touched):
//!
//! ```text
//! environments/<env>/kustomization.yaml   what Argo CD builds: the rendered manifests, images pinned
//! environments/<env>/manifests.yaml       the fully rendered manifests, for the reviewer of the commit
//! environments/<env>/release.json         which release the environment runs (id, commit, commit time)
//! releases/<id>/release.json              every release's record, kept forever
//! releases/<id>/<env>/…                   that release's environment files, what a rollback restores
//! ```
//!
//! Writes go fetch → regenerate → commit → push, never forced; a rejected push (someone else got there
//! first) starts over from the new remote head after a jittered pause. Releases are ordered by their source
//! commit's time, so when two race, both are recorded and the later one ends up deployed whichever pushes
//! last.

mod git;
pub mod state;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

pub use git::{DeployRepository, Pushed};
pub use state::{EnvironmentFiles, Outcome, ReleaseEntry};

/// What a release did to the deploy repository: the commit, if one was needed, and each environment's outcome.
pub type Published = (Option<Pushed>, Vec<(String, Outcome)>);

/// Records `entry` and deploys it wherever no later release runs. `summarize` gets the record of the release
/// production runs now (if any) and writes what changed since, for the person who decides on the sync.
pub fn publish_release(
    repository: &DeployRepository,
    entry: &ReleaseEntry,
    record: &[u8],
    environments: &[EnvironmentFiles],
    summarize: impl Fn(Option<&serde_json::Value>) -> String,
) -> anyhow::Result<Published> {
    let mut outcomes = Vec::new();
    let pushed = repository.publish(|root| {
        let previous = state::current(root, "production")?
            .map(|running| state::record(root, &running.release_id))
            .transpose()?;
        outcomes = state::apply_release(root, entry, record, environments)?;
        let mut message = format!("release {}\n\n", entry.release_id);
        for (environment, outcome) in &outcomes {
            let _ = match outcome {
                Outcome::Deployed => {
                    writeln!(message, "{environment}: deploys {}", entry.release_id)
                }
                Outcome::KeptNewer(newer) => {
                    writeln!(
                        message,
                        "{environment}: keeps the later release {newer}; this one is only recorded"
                    )
                }
            };
        }
        let _ = write!(
            message,
            "\n{}\n\nRelease-Id: {}\nSource-Commit: {}\n",
            summarize(previous.as_ref()).trim_end(),
            entry.release_id,
            entry.source_commit
        );
        Ok(Some(message))
    })?;
    Ok((pushed, outcomes))
}

/// Writes a recorded release's desired state back as a new commit (history is never rewritten).
pub fn publish_rollback(
    repository: &DeployRepository,
    release_id: &str,
) -> anyhow::Result<Option<Pushed>> {
    repository.publish(|root| {
        let mut previous: Vec<String> = crate::manifests::ENVIRONMENTS
            .iter()
            .filter_map(|environment| state::current(root, environment).ok().flatten())
            .map(|entry| entry.release_id)
            .collect();
        previous.dedup();
        let (entry, environments) = state::apply_rollback(root, release_id)?;
        Ok(Some(format!(
            "rollback to release {release_id}\n\n{} return to {release_id} (from {}).\n\n\
             Release-Id: {}\nSource-Commit: {}\nRollback-From: {}\n",
            environments.join(", "),
            if previous.is_empty() { "nothing".to_owned() } else { previous.join(", ") },
            entry.release_id,
            entry.source_commit,
            previous.join(", "),
        )))
    })
}
