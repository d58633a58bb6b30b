//! The desired state in the deploy repository (a separate git repository Argo CD reads), written only by
//! `cargo xtask release`, `promote`, `rollback` and `lift-hold`.
//!
//! Layout of the deploy repository (everything here is generated; nothing else in the repository is touched):
//!
//! ```text
//! environments/<env>/kustomization.yaml   what Argo CD builds: the rendered manifests, images pinned
//! environments/<env>/manifests.yaml       the fully rendered manifests, for the reviewer of the commit
//! environments/<env>/release.json         which release the environment runs (id, commit, commit time)
//! environments/<env>/hold.json            a rollback's hold: releases not newer than what it rolled back
//!                                         from are only recorded here (until lifted)
//! environments/production/promotions.jsonl   one line per promotion and refused promotion
//! releases/<id>/release.json              every release's record, kept forever
//! releases/<id>/<env>/…                   that release's environment files, what promote and rollback write
//! releases/<id>/contracts/<version>.json  the contract documents it served (promote's changelog)
//! releases/<id>/candidate.json            its production candidate record: summary and risk class
//! ```
//!
//! Branches: everything is committed to `main` (staging's Argo CD Application follows it); `production`
//! (production's Application) moves only with a promotion or a rollback of production, in the same atomic
//! push, so it always points at a commit of `main` somebody confirmed.
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

pub use git::{BRANCH as MAIN_BRANCH, DeployRepository, PRODUCTION_BRANCH, Pushed, Signing};
pub use state::{EnvironmentFiles, Outcome, ReleaseEntry};

/// Who runs a command that writes the deploy repository, for its record (`Promoted-By:`, `Rolled-Back-By:`,
/// `Hold-Lifted-By:`): `given` (`--by`), else `RELEASE_ACTOR` (CI), else git's `user.name <user.email>`, else
/// `USER`.
pub fn actor(given: Option<&str>) -> String {
    let git = |key: &str| {
        std::process::Command::new("git")
            .args(["config", key])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("RELEASE_ACTOR").ok())
        .or_else(|| match (git("user.name"), git("user.email")) {
            (Some(name), Some(email)) => Some(format!("{name} <{email}>")),
            (name, _) => name,
        })
        .or_else(|| std::env::var("USER").ok())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// What a release did to the deploy repository: the commit, if one was needed, and each environment's outcome.
pub type Published = (Option<Pushed>, Vec<(String, Outcome)>);

/// Records `entry` and deploys it wherever no later release runs, except production, for which it becomes a
/// candidate (`cargo xtask promote` writes production). `extra` gets the checkout before the release is applied
/// and returns further files for `releases/<id>/` (the contract documents, the candidate record). `summarize`
/// gets the record of the release staging was told to run before (if any) and writes what changed since.
pub fn publish_release(
    repository: &DeployRepository,
    entry: &ReleaseEntry,
    record: &[u8],
    environments: &[EnvironmentFiles],
    extra: impl Fn(&std::path::Path) -> anyhow::Result<Vec<(String, Vec<u8>)>>,
    summarize: impl Fn(Option<&serde_json::Value>) -> String,
) -> anyhow::Result<Published> {
    let mut outcomes = Vec::new();
    let pushed = repository.publish(|root| {
        let previous = state::current(root, "staging")?
            .map(|running| state::record(root, &running.release_id))
            .transpose()?;
        let extra = extra(root)?;
        outcomes = state::apply_release(root, entry, record, environments, &extra)?;
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
                Outcome::Candidate => writeln!(
                    message,
                    "{environment}: unchanged; {} is a candidate (releases/{}/{}), reached only by \
                     `cargo xtask promote {} --to {environment}`",
                    entry.release_id,
                    entry.release_id,
                    state::CANDIDATE_FILE,
                    entry.release_id
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

/// A confirmed promotion, ready to be written.
#[derive(Clone, Debug)]
pub struct Promotion<'a> {
    pub release_id: &'a str,
    pub environment: &'a str,
    /// The release the environment's desired state named when the person read the summary: if it moved since,
    /// the promotion is refused (they confirmed a summary against a state that is gone).
    pub desired_before: Option<&'a str>,
    /// The commit message's body (the summary) and its trailers (`Promoted-By:`, `Acknowledged:`, …).
    pub body: &'a str,
    pub trailers: &'a [(&'a str, String)],
    /// The line appended to `promotions.jsonl`.
    pub line: &'a serde_json::Value,
    pub signing: &'a Signing,
}

/// Writes a promotion: the release's archived files become the environment's desired state, a line is appended
/// to its `promotions.jsonl`, and `main` and the production branch move together to the new commit.
pub fn publish_promotion(
    repository: &DeployRepository,
    promotion: &Promotion<'_>,
) -> anyhow::Result<Option<Pushed>> {
    let environment = promotion.environment;
    repository.publish_moving(true, promotion.signing, |root| {
        let desired = state::current(root, environment)?.map(|entry| entry.release_id);
        anyhow::ensure!(
            desired.as_deref() == promotion.desired_before,
            "{environment}'s desired state moved to {} while the summary was read (it named {}): nothing was \
             written; run the promotion again",
            desired.as_deref().unwrap_or("nothing"),
            promotion.desired_before.unwrap_or("nothing")
        );
        let (entry, _) = state::apply_promotion(root, promotion.release_id, environment)?;
        state::append_promotion(root, environment, promotion.line)?;
        let mut message = format!(
            "promote release {} to {environment}\n\n{}\n\nRelease-Id: {}\nSource-Commit: {}\n",
            entry.release_id,
            promotion.body.trim_end(),
            entry.release_id,
            entry.source_commit
        );
        for (key, value) in promotion.trailers {
            let _ = writeln!(message, "{key}: {value}");
        }
        Ok(Some(message))
    })
}

/// Records a refused promotion (a line in `promotions.jsonl` on `main`; the production branch stays).
pub fn publish_refusal(
    repository: &DeployRepository,
    release_id: &str,
    environment: &str,
    line: &serde_json::Value,
) -> anyhow::Result<Option<Pushed>> {
    repository.publish(|root| {
        state::append_promotion(root, environment, line)?;
        let reasons: Vec<&str> = line["reasons"]
            .as_array()
            .map(|reasons| reasons.iter().filter_map(|r| r.as_str()).collect())
            .unwrap_or_default();
        Ok(Some(format!(
            "refused: promote release {release_id} to {environment}\n\n{}\n\nRelease-Id: {release_id}\n\
             Promotion-Refused: {}\n",
            reasons.iter().map(|reason| format!("- {reason}")).collect::<Vec<_>>().join("\n"),
            line["by"].as_str().unwrap_or("unknown")
        )))
    })
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
    // The environments are settled before the write, since the push must know whether the production branch
    // moves with it (a rollback of production is a person's decision on record, like a promotion).
    let root = repository.fresh_checkout()?;
    let environments = if request.environments.is_empty() {
        let mut ran = Vec::new();
        for environment in state::recorded_environments(root, release_id)? {
            if ledger::desired_states(root, &environment)?
                .iter()
                .any(|desired| desired.entry.release_id == release_id)
            {
                ran.push(environment);
            }
        }
        ran
    } else {
        request.environments.to_vec()
    };
    anyhow::ensure!(
        !environments.is_empty(),
        "release {release_id} never ran anywhere: no environment's desired state named it (promote it instead)"
    );
    let moves_production = environments
        .iter()
        .any(|environment| state::PROMOTED_ENVIRONMENTS.contains(&environment.as_str()));
    repository.publish_moving(moves_production, &Signing::None, |root| {
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
