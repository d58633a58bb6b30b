//! The contract stages: every served API version against each of its released baselines, the protobuf
//! descriptor set against each released one, and the localization keys against the String Catalog.
//!
//! Baselines live in `contracts/released/`: `api/<version>/<label>.json` (the schema document as released)
//! and `proto/<label>.binpb` (the descriptor set as released). Releasing adds a file; files are never edited.
//!
//! A released version may stop being served only on evidence (`contracts::retirement`): production's
//! `API_RETIREMENT` gives it a sunset that has passed, and `ops.api_usage_day` (`--database-url`) shows
//! fewer than `--retire-below` requests over the last 14 days. `cargo xtask contracts usage` prints that
//! record.

use std::path::Path;

use anyhow::{Context, bail};
use contracts::retirement::{self, Evidence, RetirementRefused, Schedule};
use prost::Message;

use crate::{codegen, project_root, stages::Stages, usage};

/// Retiring a released version needs fewer requests than this over the last 14 days, unless told otherwise.
pub const DEFAULT_RETIRE_BELOW: u64 = 100;

/// Options of `cargo xtask contracts`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    #[command(subcommand)]
    pub command: Option<ContractsCommand>,
    /// The database holding the recorded usage (`ops.api_usage_day`): production's, for the retirement
    /// rule and `usage`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// A released version may stop being served only with fewer requests than this over the last 14 days
    /// (and its sunset passed).
    #[arg(long, default_value_t = DEFAULT_RETIRE_BELOW, global = true)]
    pub retire_below: u64,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ContractsCommand {
    /// Print who still calls each API version and build over the last 14 days, from `ops.api_usage_day`.
    Usage,
}

/// The contract checks as `ci` and `release` run them: the retirement rule reads `DATABASE_URL` when set.
pub fn run() -> anyhow::Result<()> {
    let options = Options {
        command: None,
        database_url: std::env::var("DATABASE_URL").ok(),
        retire_below: DEFAULT_RETIRE_BELOW,
    };
    run_with(&options)
}

pub fn run_with(options: &Options) -> anyhow::Result<()> {
    let root = project_root();
    if let Some(ContractsCommand::Usage) = options.command {
        return print_usage(&root, options);
    }
    // Every check runs, so one report shows all that broke.
    let mut stages = Stages::new("contracts", 3);
    if let Err(error) = stages.check("api shape", || api_shape(&root, options)) {
        eprintln!("{error:#}");
    }
    for (name, stage) in [
        ("protobuf breaking", protobuf_breaking as fn(&Path) -> anyhow::Result<()>),
        ("localization keys", localization_keys),
    ] {
        if let Err(error) = stages.check(name, || stage(&root)) {
            eprintln!("{error:#}");
        }
    }
    anyhow::ensure!(stages.passed(), "contract checks failed");
    Ok(())
}

/// What `ops.api_usage_day` holds for the window ending today, or `None` without a database.
fn recorded_usage(options: &Options) -> anyhow::Result<Option<usage::Recorded>> {
    let Some(url) = options.database_url.as_deref() else {
        return Ok(None);
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The pool's maintenance task is spawned on the runtime it is made in.
    let _inside = runtime.enter();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_lazy(url)
        .context("DATABASE_URL is not a PostgreSQL URL")?;
    let today = usage::utc_today(jiff::Timestamp::now());
    runtime.block_on(usage::read(&pool, today)).map(Some)
}

#[expect(clippy::print_stdout, reason = "the usage table is this command's output")]
fn print_usage(root: &Path, options: &Options) -> anyhow::Result<()> {
    let recorded = recorded_usage(options)?
        .context("`usage` reads ops.api_usage_day: set DATABASE_URL or --database-url")?;
    // The report is still useful without the schedule (no kubectl here): say so and go on.
    let schedule = usage::production_schedule(root)
        .inspect_err(|error| eprintln!("retirement schedule unavailable: {error:#}"))
        .ok();
    print!("{}", usage::report(&recorded, schedule.as_ref()));
    Ok(())
}

/// A released version that is no longer served: allowed only on evidence, else the reason it is refused.
fn judge_unserved(
    version: &str,
    schedule: &Schedule,
    recorded: Option<&usage::Recorded>,
    threshold: u64,
) -> Result<String, RetirementRefused> {
    let evidence = match recorded {
        Some(recorded) => recorded.evidence(version, threshold),
        None => Evidence { recent_requests: None, threshold },
    };
    retirement::judge_retirement(version, schedule, jiff::Timestamp::now(), evidence)?;
    Ok(format!(
        "{version} retired: its sunset passed and it had {} request(s) in the last {} days (< {threshold})",
        evidence.recent_requests.unwrap_or(0),
        retirement::USAGE_WINDOW_DAYS
    ))
}

/// Each served version's current schema document against every released baseline of that version.
fn api_shape(root: &Path, options: &Options) -> anyhow::Result<()> {
    let versions = contracts::catalogue::versions();
    let released = root.join("contracts/released/api");
    let mut problems = Vec::new();
    let mut compared = 0;
    for version in &versions {
        let dir = released.join(version.version);
        let baselines = sorted_files(&dir, "json").with_context(|| {
            format!("no released baselines for {} in {}", version.version, dir.display())
        })?;
        if baselines.is_empty() {
            bail!(
                "{} is served but has no released baseline in {}",
                version.version,
                dir.display()
            );
        }
        let current = version.schema_document();
        for path in baselines {
            let baseline: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let findings = compat::schema::compare(&baseline, &current);
            compared += 1;
            let label = path.strip_prefix(root).unwrap_or(&path).display().to_string();
            for finding in &findings {
                eprintln!("  {label}: {finding}");
            }
            problems.extend(compat::breaking(&findings).map(|f| format!("{label}: {f}")));
        }
    }
    // A released version that is no longer served breaks every app still on it, unless it is retired on
    // evidence: a sunset that passed and (almost) nobody calling it.
    let mut unserved = Vec::new();
    for entry in std::fs::read_dir(&released)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !versions.iter().any(|version| version.version == name) {
            unserved.push(name);
        }
    }
    if !unserved.is_empty() {
        let schedule = usage::production_schedule(root)?;
        let recorded = recorded_usage(options)?;
        for name in unserved {
            match judge_unserved(&name, &schedule, recorded.as_ref(), options.retire_below) {
                Ok(retired) => eprintln!("  contracts/released/api/{name}: {retired}"),
                Err(refused) => problems.push(format!(
                    "contracts/released/api/{name}: version {name} was released but is no longer served, \
                     and retiring it is refused: {refused}"
                )),
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} breaking change(s) against released API contracts:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    eprintln!("  {compared} released API baseline(s) compatible");
    Ok(())
}

fn protobuf_breaking(root: &Path) -> anyhow::Result<()> {
    let current = codegen::descriptor_set(root)?;
    let dir = root.join("contracts/released/proto");
    let baselines = sorted_files(&dir, "binpb")?;
    if baselines.is_empty() {
        bail!("no released descriptor set in {}", dir.display());
    }
    let mut problems = Vec::new();
    for path in &baselines {
        let baseline = prost_types::FileDescriptorSet::decode(std::fs::read(path)?.as_slice())
            .with_context(|| format!("{} is not a descriptor set", path.display()))?;
        let label = path.strip_prefix(root).unwrap_or(path).display().to_string();
        let findings = compat::proto::compare(&baseline, &current);
        problems.extend(compat::breaking(&findings).map(|f| format!("{label}: {f}")));
    }
    if !problems.is_empty() {
        bail!("{} breaking protobuf change(s):\n{}", problems.len(), problems.join("\n"));
    }
    eprintln!("  {} released descriptor set(s) compatible", baselines.len());
    Ok(())
}

fn localization_keys(root: &Path) -> anyhow::Result<()> {
    let dir = root.join("contracts/localization");
    let catalog = std::fs::read_to_string(dir.join("Localizable.xcstrings"))?;
    let table = std::fs::read_to_string(dir.join("KEYS.md"))?;
    let problems = contracts::localization::check(&catalog, &table);
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        bail!("{} localization problem(s):\n{}", lines.len(), lines.join("\n"));
    }
    Ok(())
}

fn sorted_files(dir: &Path, extension: &str) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("failed to read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    //! The acceptance scenarios on the real v2 contract: each edit below is what a careless change would do.

    use serde_json::{Value, json};

    fn v2() -> Value {
        let versions = contracts::catalogue::versions();
        versions.iter().find(|v| v.version == "v2").unwrap().schema_document()
    }

    fn breaking_lines(baseline: &Value, current: &Value) -> Vec<String> {
        let findings = compat::schema::compare(baseline, current);
        compat::breaking(&findings).map(ToString::to_string).collect()
    }

    #[test]
    fn an_unserved_version_is_retired_only_past_its_sunset_and_quiet() {
        use contracts::retirement::Schedule;

        use crate::usage::{Recorded, UsageRow};

        let link = "link=https://hangangjari.app/docs/api/v1-sunset";
        let past = Schedule::parse(&format!(
            "v1 deprecation=2020-01-01T00:00:00Z sunset=2020-06-01T00:00:00Z {link}"
        ))
        .unwrap();
        let future = Schedule::parse(&format!(
            "v1 deprecation=2020-01-01T00:00:00Z sunset=2999-01-01T00:00:00Z {link}"
        ))
        .unwrap();
        let today = crate::usage::utc_today(jiff::Timestamp::now());
        let first_day = today.checked_sub(jiff::Span::new().days(13)).unwrap();
        let recorded = |v1_requests: i64| Recorded {
            first_day,
            today,
            rows: vec![UsageRow {
                api_version: "v1".to_owned(),
                app_version: "build 412".to_owned(),
                requests: v1_requests,
                last_seen: jiff::Timestamp::now(),
            }],
            recorded_since: Some(first_day),
        };
        let judged = |schedule: &Schedule, record: Option<&Recorded>| {
            super::judge_unserved("v1", schedule, record, 100)
                .map_err(|refused| refused.to_string())
        };
        assert!(
            judged(&past, Some(&recorded(250))).unwrap_err().contains("still had 250 request(s)")
        );
        assert!(judged(&future, Some(&recorded(0))).unwrap_err().contains("has not passed yet"));
        assert!(judged(&past, None).unwrap_err().contains("no usage record"));
        assert!(
            judged(&Schedule::default(), Some(&recorded(0))).unwrap_err().contains("no sunset")
        );
        assert_eq!(
            judged(&past, Some(&recorded(0))).unwrap(),
            "v1 retired: its sunset passed and it had 0 request(s) in the last 14 days (< 100)"
        );
    }

    #[test]
    fn current_contract_matches_its_own_baseline() {
        assert!(compat::schema::compare(&v2(), &v2()).is_empty());
    }

    #[test]
    fn a_baseline_field_the_code_no_longer_has_fails() {
        let mut baseline = v2();
        let summary = &mut baseline["dtos"]["HomeSummary"]["schema"]["$defs"]["ParkingSummary"];
        summary["properties"]["spaces_total"] = json!({"type": "integer"});
        summary["required"].as_array_mut().unwrap().push("spaces_total".into());
        let lines = breaking_lines(&baseline, &v2());
        assert_eq!(
            lines,
            vec![
                "BREAKING [response-property-removed] v2 HomeSummary parks[].parking.spaces_total: \
                 a required property is gone; old apps fail with keyNotFound"
            ]
        );
    }

    #[test]
    fn a_new_value_in_a_closed_response_enum_fails() {
        let baseline = v2();
        let mut current = v2();
        let level =
            &mut current["dtos"]["HomeSummary"]["schema"]["$defs"]["CongestionLevel"]["oneOf"];
        level.as_array_mut().unwrap().push(json!({"type": "string", "const": "closed_for_flood"}));
        let lines = breaking_lines(&baseline, &current);
        assert!(!lines.is_empty());
        assert!(
            lines.iter().all(|line| line.contains("[closed-response-enum-value-added]")
                && line.contains("congestion.level")
                && line.contains("closed_for_flood")),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_new_required_request_field_fails() {
        let baseline = v2();
        let mut current = v2();
        let request = &mut current["dtos"]["InstallationRequest"]["schema"];
        request["properties"]["device_model"] = json!({"type": "string"});
        request["required"].as_array_mut().unwrap().push("device_model".into());
        assert_eq!(
            breaking_lines(&baseline, &current),
            vec![
                "BREAKING [new-required-request-property] v2 InstallationRequest device_model: \
                 a new required property; old apps do not send it"
            ]
        );
    }

    #[test]
    fn a_new_optional_response_field_passes() {
        let baseline = v2();
        let mut current = v2();
        let park = &mut current["dtos"]["HomeSummary"]["schema"]["$defs"]["HomePark"];
        park["properties"]["sunset_at"] =
            json!({"type": ["string", "null"], "format": "date-time"});
        let findings = compat::schema::compare(&baseline, &current);
        assert_eq!(compat::breaking(&findings).count(), 0);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, "response-property-added");
    }
}
