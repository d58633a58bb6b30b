//! `cargo xtask history`: the release ledger, answered from records. It joins the deploy repository (every
//! desired-state commit, its trailers, every release's `release.json`) with the rollout records the system
//! wrote itself (`ops.process_start`, `ops.smoke_run`, read through `DATABASE_URL` or from a JSON export), so
//! "which release ran in production at 14:05?", "which release shipped this digest?" and "what changed
//! around the time it started acting strange?" need neither memory nor Argo CD's ten-entry history.
//!
//! - [`model`]: the join, pure.
//! - [`explain`]: source-health transitions and push outcomes around a time.

mod explain;
mod model;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde_json::json;

use crate::deploy::{DeployRepository, ledger, state};
use model::{Cause, Inputs, Release};
pub use model::{Ledger, Rollout};

/// Options of `cargo xtask history`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The deploy repository (a URL or a path).
    #[arg(long, env = "RELEASE_DEPLOY_REPO", required_unless_present = "export_rollouts")]
    pub deploy_repo: Option<String>,
    /// The environment's PostgreSQL, where the rollout records are (`ops.process_start`, `ops.smoke_run`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Rollout records exported earlier with `--export-rollouts`, for a machine that cannot reach the database.
    #[arg(long, value_name = "FILE", conflicts_with = "database_url")]
    pub rollouts: Option<PathBuf>,
    /// Only this environment.
    #[arg(long = "env", value_name = "ENVIRONMENT")]
    pub environment: Option<String>,
    /// What ran at this time, per environment (RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` in UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<i64>,
    /// Only rollouts of releases built from this commit (a prefix of at least 7 hex digits).
    #[arg(long)]
    pub commit: Option<String>,
    /// The release that shipped this image digest (index, manifest, config, layer or binary; `sha256:` or hex,
    /// at least 12 digits), and its rollouts.
    #[arg(long)]
    pub digest: Option<String>,
    /// Only rollouts of this release.
    #[arg(long)]
    pub release: Option<String>,
    /// "When did it start acting strange?": the rollouts, source-health transitions and push outcomes around
    /// this time (needs the database).
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "at")]
    pub explain: Option<i64>,
    /// How far before `--explain`'s time to look, in hours.
    #[arg(long, default_value_t = 6)]
    pub hours_before: i64,
    /// How far after `--explain`'s time to look, in hours.
    #[arg(long, default_value_t = 1)]
    pub hours_after: i64,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Print the rollout records of `DATABASE_URL` as JSON (the file `--rollouts` reads) and exit.
    #[arg(long, requires = "database_url")]
    pub export_rollouts: bool,
}

/// RFC 3339 with an offset, or a civil time in UTC.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Ok(timestamp.as_second());
    }
    let civil: jiff::civil::DateTime = text
        .trim()
        .replacen(' ', "T", 1)
        .parse()
        .map_err(|_| format!("`{text}` is not a time: use RFC 3339 (2026-12-01T14:05:00+09:00) or `2026-12-01 05:05` (UTC)"))?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|zoned| zoned.timestamp().as_second())
        .map_err(|error| error.to_string())
}

fn time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map_or_else(|_| seconds.to_string(), |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The pool's maintenance task is spawned on the runtime it is made in.
    let _inside = runtime.enter();
    let pool = options.database_url.as_deref().map(connect).transpose()?;
    if options.export_rollouts {
        let pool = pool.as_ref().context("--export-rollouts needs DATABASE_URL")?;
        let rollouts = runtime
            .block_on(db::ops::rollouts(pool))
            .context("cannot read ops.process_start and ops.smoke_run")?;
        println!("{}", serde_json::to_string_pretty(&rollouts)?);
        return Ok(());
    }
    let rollouts = match &pool {
        Some(pool) => Some(
            runtime
                .block_on(db::ops::rollouts(pool))
                .context("cannot read the rollout records (ops.process_start, ops.smoke_run)")?,
        ),
        None => load_rollouts(None, options.rollouts.as_deref())?,
    };
    let url = options.deploy_repo.as_deref().context("--deploy-repo is required")?;
    let ledger = read_ledger(url, rollouts)?;
    match options.explain {
        Some(at) => {
            let pool = pool.as_ref().context(
                "--explain reads ingest runs and push outcomes: it needs DATABASE_URL (the environment's database)",
            )?;
            let window = explain::Window {
                from: at - options.hours_before * 3600,
                until: at + options.hours_after * 3600,
            };
            let runs = runtime.block_on(explain::runs(pool, window))?;
            let transitions = explain::transitions(&runs, window);
            let push = runtime.block_on(explain::push_hours(pool, window))?;
            let rollouts: Vec<&Rollout> = ledger
                .rollouts
                .iter()
                .filter(|rollout| selected(options, &ledger, rollout))
                .filter(|rollout| (window.from..window.until).contains(&rollout.effective_at()))
                .collect();
            if options.json {
                let body = json!({"at": at, "window": window, "rollouts": rollouts,
                                  "source_transitions": transitions, "push_hours": push});
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print_explanation(at, window, &rollouts, &transitions, &push);
            }
        }
        None => print_history(options, &ledger)?,
    }
    Ok(())
}

/// A small lazy pool on an environment's database; made inside the runtime that uses it (its maintenance task
/// is spawned there).
fn connect(url: &str) -> anyhow::Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_lazy(url)
        .context("the database URL is not a PostgreSQL URL")
}

/// The rollout records of one environment's database (`DATABASE_URL`), or of an `--export-rollouts` file.
pub fn load_rollouts(
    database_url: Option<&str>,
    file: Option<&Path>,
) -> anyhow::Result<Option<db::ops::Rollouts>> {
    if let Some(url) = database_url {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let _inside = runtime.enter();
        let pool = connect(url)?;
        let rollouts = runtime
            .block_on(db::ops::rollouts(&pool))
            .context("cannot read the rollout records (ops.process_start, ops.smoke_run)")?;
        return Ok(Some(rollouts));
    }
    let Some(file) = file else { return Ok(None) };
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let rollouts = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not an --export-rollouts file", file.display()))?;
    Ok(Some(rollouts))
}

/// The ledger of the deploy repository at `url` (a fresh checkout of its `main`) with the rollout records.
fn read_ledger(url: &str, rollouts: Option<db::ops::Rollouts>) -> anyhow::Result<Ledger> {
    let repository = DeployRepository::open_in_target(url, &crate::target_dir())?;
    ledger(repository.fresh_checkout()?, rollouts)
}

/// The ledger of a deploy repository checkout with the rollout records: desired states, holds, release
/// records and promotions, joined.
pub fn ledger(root: &Path, rollouts: Option<db::ops::Rollouts>) -> anyhow::Result<Ledger> {
    let mut inputs = Inputs { rollouts, ..Inputs::default() };
    for environment in environments(root)? {
        inputs.desired.insert(environment.clone(), ledger::desired_states(root, &environment)?);
        if let Some(hold) = state::hold(root, &environment)? {
            inputs.holds.insert(environment.clone(), hold);
        }
        for mut line in state::promotions(root, &environment)? {
            if line["environment"].is_null() {
                line["environment"] = json!(environment);
            }
            inputs.promotions.push(line);
        }
    }
    for release_id in state::recorded_releases(root)? {
        let record = state::record(root, &release_id)?;
        let mut release = Release::from_record(&record)
            .with_context(|| format!("releases/{release_id}/release.json lacks its identity"))?;
        if release.subject.is_none() {
            release.subject = subject_in_source(&release.source_commit);
        }
        inputs.releases.insert(release_id, release);
    }
    Ok(model::join(inputs))
}

/// The environments with a desired state, by their directory.
fn environments(root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = root.join("environments");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// A commit's subject from this checkout, for records that predate `source_subject`.
fn subject_in_source(commit: &str) -> Option<String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(crate::project_root())
        .args(["log", "-1", "--format=%s", commit, "--"])
        .output()
        .ok()?;
    let subject = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !subject.is_empty()).then_some(subject)
}

/// Whether a rollout passes the filters.
fn selected(options: &Options, ledger: &Ledger, rollout: &Rollout) -> bool {
    options.environment.as_ref().is_none_or(|env| *env == rollout.environment)
        && options.release.as_ref().is_none_or(|id| *id == rollout.release_id)
        && options
            .commit
            .as_ref()
            .is_none_or(|commit| rollout.source_commit.starts_with(commit.as_str()))
        && options.digest.as_ref().is_none_or(|digest| {
            ledger
                .releases
                .get(&rollout.release_id)
                .is_some_and(|release| release.find_digest(digest).is_some())
        })
}

fn print_history(options: &Options, ledger: &Ledger) -> anyhow::Result<()> {
    if let Some(commit) = &options.commit {
        anyhow::ensure!(commit.len() >= 7, "--commit needs at least 7 hex digits");
    }
    let rollouts: Vec<&Rollout> = match options.at {
        Some(at) => ledger.at(at),
        None => ledger.rollouts.iter().collect(),
    }
    .into_iter()
    .filter(|rollout| selected(options, ledger, rollout))
    .collect();
    let environments: Vec<_> = ledger
        .environments
        .iter()
        .filter(|env| options.environment.as_ref().is_none_or(|wanted| *wanted == env.environment))
        .collect();
    // Releases the filters name that never reached a desired state.
    let matches: Vec<serde_json::Value> = ledger
        .releases
        .values()
        .filter(|release| options.release.as_ref().is_none_or(|id| *id == release.release_id))
        .filter(|release| {
            options.commit.as_ref().is_none_or(|c| release.source_commit.starts_with(c.as_str()))
        })
        .filter_map(|release| {
            let image = match &options.digest {
                Some(digest) => Some(release.find_digest(digest)?),
                None => None,
            };
            (options.digest.is_some() || options.commit.is_some() || options.release.is_some())
                .then(|| {
                    json!({"release_id": release.release_id, "source_commit": release.source_commit,
                                "subject": release.subject, "image": image})
                })
        })
        .collect();
    if options.json {
        let promotions: Vec<&serde_json::Value> =
            ledger.promotions.iter().filter(|line| promotion_selected(options, line)).collect();
        let body = json!({"environments": environments, "rollouts": rollouts, "matches": matches,
                          "promotions": promotions, "with_rollout_records": ledger.with_rollout_records});
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    for env in &environments {
        let running: BTreeMap<&str, Vec<&str>> =
            env.running.iter().fold(BTreeMap::new(), |mut by_release, (service, release)| {
                by_release.entry(release.as_str()).or_insert_with(Vec::new).push(service.as_str());
                by_release
            });
        let running = if !ledger.with_rollout_records {
            "running: unknown (no rollout records; pass DATABASE_URL or --rollouts)".to_owned()
        } else if running.is_empty() {
            "running: no process recorded here (its own database has its records)".to_owned()
        } else {
            let parts: Vec<String> = running
                .iter()
                .map(|(release, services)| format!("{release} ({})", services.join(", ")))
                .collect();
            format!("running {}", parts.join(" + "))
        };
        println!(
            "{:<11} desired {}  {running}{}",
            env.environment,
            env.desired.as_deref().unwrap_or("nothing"),
            if env.drift { "  DRIFT" } else { "" }
        );
        if let Some(hold) = &env.held {
            let from: Vec<&str> =
                hold.rolled_back_from.iter().map(|e| e.release_id.as_str()).collect();
            println!(
                "{:<11} held at {} after rolling back from {} (by {}, {})",
                "",
                hold.rolled_back_to,
                from.join(", "),
                hold.by,
                hold.at
            );
        }
    }
    if let Some(at) = options.at {
        println!("\nrunning at {}:", time(at));
    } else {
        println!();
    }
    for rollout in &rollouts {
        println!("{}", line(rollout));
    }
    if rollouts.is_empty() {
        println!("(no rollout matches)");
    }
    for found in &matches {
        if let Some(image) = found["image"].as_str() {
            println!(
                "{} is {image} of release {}",
                options.digest.as_deref().unwrap_or(""),
                found["release_id"].as_str().unwrap_or("?")
            );
        }
    }
    let promotions: Vec<&serde_json::Value> =
        ledger.promotions.iter().filter(|line| promotion_selected(options, line)).collect();
    if !promotions.is_empty() {
        println!("\npromotions (environments/<env>/promotions.jsonl):");
    }
    for promotion in promotions {
        println!("{}", promotion_line(promotion));
    }
    Ok(())
}

/// Whether a promotion line passes the environment and release filters.
fn promotion_selected(options: &Options, line: &serde_json::Value) -> bool {
    options.environment.as_ref().is_none_or(|env| line["environment"] == env.as_str())
        && options.release.as_ref().is_none_or(|id| line["release_id"] == id.as_str())
}

/// One promotion or refusal as a line: when, the outcome, who, what was acknowledged, and why it was refused.
fn promotion_line(line: &serde_json::Value) -> String {
    let text = |key: &str| line[key].as_str().unwrap_or("?").to_owned();
    let list = |key: &str| {
        line[key]
            .as_array()
            .map(|items| {
                items.iter().filter_map(|item| item.as_str()).collect::<Vec<_>>().join(", ")
            })
            .unwrap_or_default()
    };
    let mut out = format!(
        "{}  {:<10} {:<9} {}  by {} ({})",
        text("at"),
        text("environment"),
        text("outcome"),
        text("release_id"),
        text("by"),
        text("mode")
    );
    if let Some(smoke) = line["staging_smoke"]["record"].as_str() {
        out.push_str(&format!("  staging smoke {smoke}"));
    }
    let acknowledged = list("acknowledged");
    if !acknowledged.is_empty() {
        out.push_str(&format!("  acknowledged {acknowledged}"));
    }
    let reasons = list("reasons");
    if !reasons.is_empty() {
        out.push_str(&format!("  refused: {reasons}"));
    }
    out
}

/// One rollout as a line: when, where, what, from which commit, what changed, and the smoke result.
fn line(rollout: &Rollout) -> String {
    let when = match rollout.started_running_at {
        Some(at) => time(at),
        None => format!("{} (desired; not seen running)", time(rollout.desired_at)),
    };
    let cause = match rollout.cause {
        Cause::Release => "release  ",
        Cause::Promotion => "promotion",
        Cause::Rollback => "rollback ",
    };
    let images = if rollout.images_changed.is_empty() {
        "none".to_owned()
    } else {
        rollout
            .images_changed
            .iter()
            .map(|binary| binary.trim_start_matches("hangang-"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let migrations = migrations_text(&rollout.migrations_applied);
    let smoke = match &rollout.smoke {
        Some(smoke) if smoke.passed => format!("passed {}/{}", smoke.checks, smoke.checks),
        Some(smoke) => format!("FAILED ({})", smoke.failed.join(", ")),
        None => "none".to_owned(),
    };
    format!(
        "{when}  {:<11} {cause} {}  {} {:?}  images: {images}  migrations: {migrations}  deploy {}  smoke: {smoke}",
        rollout.environment,
        rollout.release_id,
        &rollout.source_commit[..rollout.source_commit.len().min(12)],
        shortened(rollout.subject.as_deref().unwrap_or("?"), 50),
        &rollout.deploy_commit[..rollout.deploy_commit.len().min(12)],
    )
}

/// The migrations a rollout applied: each named while there are few, else counted by kind with the contract
/// ones named (the ones a reader must not miss).
fn migrations_text(migrations: &[model::MigrationView]) -> String {
    const NAMED: usize = 3;
    if migrations.is_empty() {
        return "none".to_owned();
    }
    let named =
        |migration: &&model::MigrationView| format!("{} ({})", migration.name, migration.kind);
    if migrations.len() <= NAMED {
        return migrations.iter().map(|m| named(&m)).collect::<Vec<_>>().join(", ");
    }
    let not_expand: Vec<String> =
        migrations.iter().filter(|m| m.kind != "expand").map(|m| named(&m)).collect();
    if not_expand.is_empty() {
        format!("{} (all expand)", migrations.len())
    } else {
        format!("{}, of them {}", migrations.len(), not_expand.join(", "))
    }
}

/// `text` cut to `longest` characters, marked when cut.
fn shortened(text: &str, longest: usize) -> String {
    if text.chars().count() <= longest {
        return text.to_owned();
    }
    let cut: String = text.chars().take(longest - 1).collect();
    format!("{cut}…")
}

fn print_explanation(
    at: i64,
    window: explain::Window,
    rollouts: &[&Rollout],
    transitions: &[explain::Transition],
    push: &[explain::PushHour],
) {
    println!("around {} (from {} to {}):", time(at), time(window.from), time(window.until));
    println!("\nrollouts:");
    for rollout in rollouts {
        println!("  {}", line(rollout));
    }
    if rollouts.is_empty() {
        println!("  none");
    }
    println!("\nsource health:");
    for transition in transitions {
        let class =
            transition.error_class.as_deref().map_or(String::new(), |class| format!(" ({class})"));
        println!(
            "  {}  {:<22} {} → {}{class} after {} run(s)",
            time(transition.at),
            transition.source,
            transition.from,
            transition.to,
            transition.after_runs
        );
    }
    if transitions.is_empty() {
        println!("  no source changed state");
    }
    println!("\npush outcomes per hour (attempts, delivered, retried, dead, deactivated):");
    for hour in push {
        println!(
            "  {}  {:>6} {:>9} {:>7} {:>4} {:>11}{}",
            time(hour.hour),
            hour.attempts,
            hour.delivered,
            hour.retried,
            hour.dead,
            hour.deactivated,
            hour.change.map_or(String::new(), |change| format!("   ← {change}"))
        );
    }
    if push.is_empty() {
        println!("  no delivery attempts");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_migrations_are_counted_and_the_contract_ones_named() {
        let view =
            |name: &str, kind: &'static str| model::MigrationView { name: name.to_owned(), kind };
        assert_eq!(migrations_text(&[]), "none");
        assert_eq!(migrations_text(&[view("1_a.sql", "expand")]), "1_a.sql (expand)");
        let many: Vec<_> = (1..=9).map(|n| view(&format!("{n}.sql"), "expand")).collect();
        assert_eq!(migrations_text(&many), "9 (all expand)");
        let mut mixed = many.clone();
        mixed.push(view("10_drop.sql", "contract"));
        assert_eq!(migrations_text(&mixed), "10, of them 10_drop.sql (contract)");
    }

    #[test]
    fn times_are_rfc3339_or_utc_civil() {
        assert_eq!(parse_time("2026-12-01T14:05:00+09:00"), Ok(1_796_101_500));
        assert_eq!(parse_time("2026-12-01 05:05"), Ok(1_796_101_500));
        assert_eq!(parse_time("2026-12-01T05:05:00Z"), Ok(1_796_101_500));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(time(1_796_101_500), "2026-12-01 05:05:00Z");
    }
}
