//! The desired state in the deploy repository (a separate git repository Argo CD reads), written only by
//! `cargo xtask release` and `cargo xtask rollback`.
//!
//! Layout of the deploy repository (everything here is generated; nothing else in the repository is touched):
//!
//! ```text
//! environments/<env>/kustomization.yaml   what Argo CD builds: the rendered manifests, images pinned
//! environments/<env>/manifests.yaml       the fully rendered manifests, for the reviewer of the commit
//! environments/<env>/release.json         which release the environment runs (id, commit, commit time)
//! environments/<env>/hold.json            a rollback's hold: releases not newer than what it rolled back
//!                                         from are only recorded here (until lifted)
//! releases/<id>/release.json              every release's record, kept forever
//! releases/<id>/<env>/…                   that release's environment files, what a rollback restores
//! ```
//!
//! Writes go fetch → regenerate → commit → push, never forced; a rejected push (someone else got there
//! first) starts over from the new remote head after a jittered pause. Releases are ordered by their source
//! commit's time, so when two race, both are recorded and the later one ends up deployed whichever pushes
//! last. A rollback is checked against the migrations first ([`rollback`]) and holds the environment.

mod git;
pub mod ledger;
pub mod rollback;
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
                Outcome::Held(at) => writeln!(
                    message,
                    "{environment}: held at {at} by a rollback (not newer than the release rolled back \
                     from); this one is only recorded"
                ),
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

/// Who asked for a rollback, and which environments it covers.
#[derive(Clone, Debug)]
pub struct RollbackRequest<'a> {
    pub release_id: &'a str,
    /// Empty: every environment the release was released to.
    pub environments: &'a [String],
    pub by: &'a str,
}

/// Writes a recorded release's desired state back as a new commit (history is never rewritten), after
/// checking that it can work ([`rollback::blockers`]); a refused rollback writes nothing.
pub fn publish_rollback(
    repository: &DeployRepository,
    request: &RollbackRequest<'_>,
) -> anyhow::Result<Option<Pushed>> {
    let release_id = request.release_id;
    repository.publish(|root| {
        let environments = if request.environments.is_empty() {
            state::recorded_environments(root, release_id)?
        } else {
            request.environments.to_vec()
        };
        let blockers = rollback::blockers(root, release_id, &environments)?;
        if !blockers.is_empty() {
            return Err(rollback::Refused { release_id: release_id.to_owned(), blockers }.into());
        }
        let at = jiff::Timestamp::now().to_string();
        let (entry, restored) =
            state::apply_rollback(root, release_id, &environments, request.by, &at)?;
        let mut previous: Vec<String> = restored
            .iter()
            .filter_map(|(_, previous)| previous.as_ref().map(|entry| entry.release_id.clone()))
            .collect();
        previous.sort();
        previous.dedup();
        let names: Vec<&str> = restored.iter().map(|(environment, _)| environment.as_str()).collect();
        Ok(Some(format!(
            "rollback to release {release_id}\n\n{} return to {release_id} (from {}), held there until \
             a release of a newer commit or `cargo xtask lift-hold`.\n\n\
             Release-Id: {}\nSource-Commit: {}\nRollback-From: {}\nRolled-Back-By: {}\n",
            names.join(", "),
            if previous.is_empty() { "nothing".to_owned() } else { previous.join(", ") },
            entry.release_id,
            entry.source_commit,
            previous.join(", "),
            request.by,
        )))
    })
}

/// Lifts a rollback's hold on `environment`, recording who lifted it and why. `None`: there was no hold.
pub fn publish_hold_lift(
    repository: &DeployRepository,
    environment: &str,
    by: &str,
    reason: &str,
) -> anyhow::Result<Option<Pushed>> {
    repository.publish(|root| {
        let Some(hold) = state::hold(root, environment)? else { return Ok(None) };
        state::remove_hold(root, environment)?;
        let from: Vec<&str> =
            hold.rolled_back_from.iter().map(|entry| entry.release_id.as_str()).collect();
        Ok(Some(format!(
            "lift the rollback hold on {environment}\n\n{environment} was held at {} after rolling back from \
             {}; the next release deploys there again.\n\nHold-Lifted-By: {by}\nHold-Lift-Reason: {reason}\n",
            hold.rolled_back_to,
            from.join(", "),
        )))
    })
}
