//! `cargo xtask promote <release-id> --to production`: the second step of a release, a person's context check
//! on record. `cargo xtask release` writes staging's desired state and a production candidate; promote then
//!
//! 1. refuses unless staging's smoke check of that release passed (the `ops.smoke_run` row it read is named);
//! 2. prints what the release changes against what production **runs** (its process starts, not its last
//!    desired state): images, restarts, migrations, the contract changelog, config, risks ([`summary`]);
//! 3. asks for the release id to be typed (or `--confirm <id>`), and `--ack <risk>` for every risk;
//! 4. writes production's desired state with `Promoted-By:`, `Acknowledged:` and `Staging-Smoke:` trailers and
//!    moves the `production` branch (the one Argo CD's production Application follows) to it.
//!
//! Every promotion and every refusal appends a line to `environments/production/promotions.jsonl`.
//! `--auto-low` promotes a low-risk release (only the api changes) without a person, for a scheduled job.

pub mod summary;

use std::{
    io::{BufRead as _, IsTerminal as _, Write as _},
    path::PathBuf,
};

use anyhow::Context;
use serde_json::json;

use crate::{
    deploy::{self, DeployRepository, Signing, state},
    history,
};
use summary::{Class, Risk, Side, Summary};

/// Options of `cargo xtask promote`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The release to promote (recorded under `releases/` in the deploy repository by `cargo xtask release`).
    pub release_id: String,
    /// The environment to promote to (only `production` is promoted to; staging gets every release).
    #[arg(long = "to", value_name = "ENVIRONMENT")]
    pub environment: String,
    /// Confirm without a prompt by naming the release again (for a scripted path).
    #[arg(long, value_name = "RELEASE_ID")]
    pub confirm: Option<String>,
    /// Acknowledge a risk the summary lists (repeatable): every listed risk must be acknowledged.
    #[arg(long = "ack", value_enum, value_name = "RISK")]
    pub acknowledged: Vec<Risk>,
    /// Promote without a person, only if the release is low-risk (only the api changes) both in its candidate
    /// record and against what production runs; recorded as such.
    #[arg(long, conflicts_with = "confirm")]
    pub auto_low: bool,
    /// Who promotes, for the record (default: `RELEASE_ACTOR`, else git's `user.name <user.email>`, else `USER`).
    #[arg(long)]
    pub by: Option<String>,
    /// The deploy repository (a URL or a path).
    #[arg(long, env = "RELEASE_DEPLOY_REPO")]
    pub deploy_repo: String,
    /// Production's PostgreSQL, whose process starts say what production runs.
    #[arg(long, env = "PRODUCTION_DATABASE_URL", hide_env_values = true)]
    pub production_database_url: Option<String>,
    /// Production's rollout records as `cargo xtask history --export-rollouts` wrote them.
    #[arg(long, value_name = "FILE", conflicts_with = "production_database_url")]
    pub production_rollouts: Option<PathBuf>,
    /// Staging's PostgreSQL, whose `ops.smoke_run` must show the release passing.
    #[arg(long, env = "STAGING_DATABASE_URL", hide_env_values = true)]
    pub staging_database_url: Option<String>,
    /// Staging's rollout records as `cargo xtask history --export-rollouts` wrote them.
    #[arg(long, value_name = "FILE", conflicts_with = "staging_database_url")]
    pub staging_rollouts: Option<PathBuf>,
    /// An SSH private key to sign the promotion commit with (`git verify-commit` checks it).
    #[arg(long, env = "DEPLOY_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
}

/// A promotion that was refused; the refusal is recorded in `promotions.jsonl`.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to promote {release_id} to {environment}:\n{}\n(recorded in environments/{environment}/{})",
    .reasons.iter().map(|reason| format!("  - {reason}")).collect::<Vec<_>>().join("\n"),
    state::PROMOTIONS_FILE
)]
pub struct Refused {
    pub release_id: String,
    pub environment: String,
    pub reasons: Vec<String>,
}

/// The staging smoke run a promotion relies on.
struct StagingSmoke {
    /// How the record is named: `ops.smoke_run #12`.
    record: String,
    finished_at: String,
}

/// The latest passing staging smoke run of `release_id`, or why there is none.
fn staging_smoke(records: &db::ops::Rollouts, release_id: &str) -> Result<StagingSmoke, String> {
    let staging: Vec<&db::ops::SmokeRun> =
        records.smoke_runs.iter().filter(|run| run.environment == "staging").collect();
    let of_release: Vec<&&db::ops::SmokeRun> =
        staging.iter().filter(|run| run.release_id == release_id).collect();
    match of_release.iter().filter(|run| run.passed).max_by_key(|run| run.finished_at) {
        Some(run) => Ok(StagingSmoke {
            record: run.id.map_or_else(
                || "ops.smoke_run (row id not exported)".to_owned(),
                |id| format!("ops.smoke_run #{id}"),
            ),
            finished_at: run.finished_at.to_string(),
        }),
        None => Err(format!(
            "no passing staging smoke check of {release_id}: staging's ops.smoke_run has {} run(s), {} of \
             {release_id}, none passed (sync staging and let its PostSync smoke Job pass first)",
            staging.len(),
            of_release.len()
        )),
    }
}

/// Asks the person at the terminal to type the release id; whether they did.
fn typed_confirmation(release_id: &str, environment: &str) -> anyhow::Result<bool> {
    print!(
        "Type the release id ({release_id}) to promote it to {environment}, anything else to stop: "
    );
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == release_id)
}

/// The candidate record's risk class (`releases/<id>/candidate.json`), if the release wrote one.
fn candidate_class(root: &std::path::Path, release_id: &str) -> anyhow::Result<Option<String>> {
    let path = state::release_dir(root, release_id).join(state::CANDIDATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let candidate: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is malformed", path.display()))?;
            Ok(candidate["class"].as_str().map(str::to_owned))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn class_name(class: Class) -> &'static str {
    match class {
        Class::Low => "low",
        Class::NeedsPerson => "needs_person",
    }
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let environment = options.environment.as_str();
    let release_id = options.release_id.as_str();
    anyhow::ensure!(
        state::PROMOTED_ENVIRONMENTS.contains(&environment),
        "only {} is promoted to; every other environment gets each release from `cargo xtask release`",
        state::PROMOTED_ENVIRONMENTS.join(", ")
    );
    let repository = DeployRepository::open_in_target(&options.deploy_repo, &crate::target_dir())?;
    let root = repository.fresh_checkout()?.to_path_buf();
    let candidate = Side::archived(&root, release_id, environment)?;

    let staging = history::load_rollouts(
        options.staging_database_url.as_deref(),
        options.staging_rollouts.as_deref(),
    )?
    .context(
        "promote reads staging's smoke record: pass --staging-database-url (STAGING_DATABASE_URL) or \
         --staging-rollouts",
    )?;
    let production = history::load_rollouts(
        options.production_database_url.as_deref(),
        options.production_rollouts.as_deref(),
    )?
    .context(
        "promote compares with what production runs: pass --production-database-url \
         (PRODUCTION_DATABASE_URL) or --production-rollouts",
    )?;
    let ledger = history::ledger(&root, Some(production))?;
    let base = ledger
        .last_seen_running(environment)
        .map(|rollout| Side::archived(&root, &rollout.release_id, environment))
        .transpose()?;
    let summary = summary::summarize(&candidate, base.as_ref());
    let desired_before = state::current(&root, environment)?.map(|entry| entry.release_id);
    let processes = ledger
        .environments
        .iter()
        .find(|env| env.environment == environment)
        .map(|env| {
            env.running
                .iter()
                .map(|(service, release)| format!("{service} {release}"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let context = format!(
        "{environment}'s desired state names {}; its processes last reported {} (ops.process_start); \
         compared with {}, the desired state it was last seen running.",
        desired_before.as_deref().unwrap_or("nothing"),
        if processes.is_empty() { "nothing".to_owned() } else { processes.join(", ") },
        summary.against.as_deref().unwrap_or("nothing")
    );
    println!("{context}\n\n{summary}\n");

    if desired_before.as_deref() == Some(release_id) {
        println!("{release_id} is already {environment}'s desired state; nothing to promote");
        return Ok(());
    }
    let by = deploy::actor(options.by.as_deref());
    let mut reasons = Vec::new();
    let smoke = staging_smoke(&staging, release_id);
    match &smoke {
        Ok(smoke) => println!("staging smoke: {} passed at {}", smoke.record, smoke.finished_at),
        Err(why) => reasons.push(why.clone()),
    }
    for risk in &summary.risks {
        if !options.acknowledged.contains(risk) {
            reasons.push(format!(
                "risk `{}` is not acknowledged (--ack {})",
                risk.as_str(),
                risk.as_str()
            ));
        }
    }
    if options.auto_low {
        if summary.class != Class::Low {
            reasons.push(format!(
                "--auto-low promotes only low-risk releases; against {} this one is not: {}",
                summary.against.as_deref().unwrap_or("nothing"),
                summary.not_low.join("; ")
            ));
        }
        let recorded = candidate_class(&root, release_id)?;
        if recorded.as_deref() != Some("low") {
            reasons.push(format!(
                "--auto-low needs the candidate record to say `low`; releases/{release_id}/{} says {}",
                state::CANDIDATE_FILE,
                recorded.as_deref().unwrap_or("nothing")
            ));
        }
    }
    let (entry, _) = state::archived_environment(&root, release_id, environment)?;
    reasons.extend(state::promotion_held_back(&root, &entry, environment)?);
    if reasons.is_empty() && !options.auto_low {
        match options.confirm.as_deref() {
            Some(confirmed) if confirmed == release_id => {}
            Some(other) => reasons.push(format!("--confirm {other} does not name {release_id}")),
            None if std::io::stdin().is_terminal() => {
                if !typed_confirmation(release_id, environment)? {
                    reasons.push("the release id was not typed at the prompt".to_owned());
                }
            }
            None => reasons.push(format!(
                "not confirmed: no terminal to ask; pass --confirm {release_id} after reading the summary"
            )),
        }
    }

    let acknowledged: Vec<&str> = options.acknowledged.iter().map(|risk| risk.as_str()).collect();
    let mode = if options.auto_low { "auto-low" } else { "confirmed" };
    let mut line = json!({
        "at": jiff::Timestamp::now().to_string(),
        "environment": environment,
        "release_id": release_id,
        "source_commit": candidate.record["source_commit"],
        "outcome": if reasons.is_empty() { "promoted" } else { "refused" },
        "mode": mode,
        "by": by,
        "acknowledged": acknowledged,
        "staging_smoke": smoke
            .as_ref()
            .ok()
            .map(|smoke| json!({"record": smoke.record, "finished_at": smoke.finished_at})),
        "desired_before": desired_before,
        "against": summary.against,
        "class": class_name(summary.class),
        "risks": summary.risks,
        "summary": &summary,
    });
    if !reasons.is_empty() {
        line["reasons"] = json!(reasons);
        deploy::publish_refusal(&repository, release_id, environment, &line)?;
        return Err(Refused {
            release_id: release_id.to_owned(),
            environment: environment.to_owned(),
            reasons,
        }
        .into());
    }
    let smoke = smoke.map_err(anyhow::Error::msg)?;
    let signing = options.signing_key.clone().map_or(Signing::None, Signing::Ssh);
    let promoted_by =
        if options.auto_low { format!("{by} (--auto-low: no person)") } else { by.clone() };
    let trailers = [
        ("Promoted-By", promoted_by),
        ("Promotion-Mode", mode.to_owned()),
        (
            "Acknowledged",
            if acknowledged.is_empty() { "none".to_owned() } else { acknowledged.join(", ") },
        ),
        ("Staging-Smoke", format!("{} ({release_id}, passed {})", smoke.record, smoke.finished_at)),
        (
            "Promoted-Against",
            summary.against.clone().unwrap_or_else(|| "nothing recorded".to_owned()),
        ),
        ("Risk-Class", class_name(summary.class).to_owned()),
    ];
    let body = format!("{context}\n\n{summary}");
    let promotion = deploy::Promotion {
        release_id,
        environment,
        desired_before: desired_before.as_deref(),
        body: &body,
        trailers: &trailers,
        line: &line,
        signing: &signing,
    };
    match deploy::publish_promotion(&repository, &promotion)? {
        Some(pushed) => println!(
            "promoted {release_id} to {environment} by {by}: {} at {} (main and {} moved; attempt {})",
            repository.url(),
            pushed.commit,
            deploy::PRODUCTION_BRANCH,
            pushed.attempts
        ),
        None => println!("{release_id} is already {environment}'s desired state"),
    }
    Ok(())
}

/// The candidate record a release writes for a promoted environment (`releases/<id>/candidate.json`): its
/// summary and risk class against that environment's desired state when it was released. `cargo xtask promote`
/// compares again with what the environment runs; `--auto-low` needs both to be low.
pub fn candidate_record(
    candidate: &Side,
    base: Option<&Side>,
    environment: &str,
) -> serde_json::Value {
    let summary: Summary = summary::summarize(candidate, base);
    json!({
        "release_id": candidate.release_id,
        "environment": environment,
        "basis": format!("{environment}'s desired state when the release was written"),
        "against": summary.against,
        "class": class_name(summary.class),
        "risks": summary.risks,
        "summary": summary,
        "promote": format!("cargo xtask promote {} --to {environment}", candidate.release_id),
    })
}
