//! The generated files of the deploy repository and how a release or a rollback changes them, as plain file
//! operations on a checkout (the git side is in `git.rs`).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::manifests::PinnedImage;

/// Which release an environment runs; also the ordering key between releases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseEntry {
    pub release_id: String,
    pub source_commit: String,
    /// The source commit's time (`SOURCE_DATE_EPOCH`), which orders releases.
    pub source_time: i64,
}

impl ReleaseEntry {
    /// Whether `self` comes after `other`: a later source commit, or the same commit released again later
    /// (release ids of one commit sort by their counter).
    pub fn supersedes(&self, other: &ReleaseEntry) -> bool {
        (self.source_time, &self.release_id) > (other.source_time, &other.release_id)
    }
}

/// One environment's generated files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentFiles {
    pub environment: String,
    /// The rendered manifests (`kubectl kustomize` output, images pinned).
    pub manifests: String,
}

/// What happened to one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The environment now runs the release.
    Deployed,
    /// A later release already runs there; this one is only recorded.
    KeptNewer(String),
    /// A rollback holds the environment at this release: the release is not newer than the one rolled back
    /// from, so it is only recorded.
    Held(String),
    /// The environment is reached only by `cargo xtask promote`: the release is recorded as a candidate.
    Candidate,
}

/// Environments a release reaches only through `cargo xtask promote` (a person's confirmation on record).
pub const PROMOTED_ENVIRONMENTS: [&str; 1] = ["production"];

/// The file beside a release's record that makes it a production candidate (`releases/<id>/candidate.json`).
pub const CANDIDATE_FILE: &str = "candidate.json";

/// Where a release archives its served contract documents (`releases/<id>/contracts/<version>.json`), so a
/// promotion can list the contract changes since the release production runs.
pub const CONTRACTS_DIR: &str = "contracts";

/// The append-only record of every promotion and refused promotion (`environments/<env>/promotions.jsonl`).
pub const PROMOTIONS_FILE: &str = "promotions.jsonl";

/// A rollback's hold on an environment (`environments/<env>/hold.json`): until a release of a newer commit
/// than every release it rolled back from (or an explicit lift), releases are only recorded there, so
/// re-running CI for the bad commit does not deploy it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The release the rollback returned to.
    pub rolled_back_to: String,
    /// The releases it rolled back away from.
    pub rolled_back_from: Vec<ReleaseEntry>,
    /// Who rolled back, and when (RFC 3339).
    pub by: String,
    pub at: String,
}

impl Hold {
    /// Whether `entry` stays recorded only: its commit is not newer than a release rolled back from.
    pub fn holds_back(&self, entry: &ReleaseEntry) -> bool {
        self.rolled_back_from.iter().any(|from| entry.source_time <= from.source_time)
    }
}

/// A migration as a release record lists it; records written before kinds were recorded list only names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedMigration {
    pub name: String,
    /// `None` when the record predates kinds.
    pub kind: Option<crate::migrations::KindName>,
}

/// The migrations a release record (`release.json`) lists.
pub fn recorded_migrations(record: &serde_json::Value) -> Vec<RecordedMigration> {
    let Some(entries) = record["migrations"].as_array() else { return Vec::new() };
    entries
        .iter()
        .filter_map(|entry| match entry {
            serde_json::Value::String(name) => {
                Some(RecordedMigration { name: name.clone(), kind: None })
            }
            object => {
                let migration: crate::migrations::Migration =
                    serde_json::from_value(object.clone()).ok()?;
                Some(RecordedMigration { name: migration.name, kind: Some(migration.kind) })
            }
        })
        .collect()
}

pub fn environment_dir(root: &Path, environment: &str) -> PathBuf {
    root.join("environments").join(environment)
}

/// The release's archived files (`releases/<id>/`), for promote and rollback.
pub fn release_dir(root: &Path, release_id: &str) -> PathBuf {
    root.join("releases").join(release_id)
}

/// The kustomization Argo CD builds. The manifests are already rendered, so it only lists them; it exists so
/// the directory is a kustomization like any other (`kubectl kustomize environments/<env>` works).
fn kustomization(entry: &ReleaseEntry, environment: &str) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Generated by `cargo xtask release`; do not edit (a rollback is a new release)."
    );
    let _ = writeln!(
        text,
        "# Release {} of commit {}, environment {environment}.",
        entry.release_id, entry.source_commit
    );
    text.push_str("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - manifests.yaml\n");
    text
}

/// The rollback hold on `environment`, if any.
pub fn hold(root: &Path, environment: &str) -> anyhow::Result<Option<Hold>> {
    let path = environment_dir(root, environment).join("hold.json");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is malformed", path.display()))?,
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Removes the hold on `environment`; whether there was one.
pub fn remove_hold(root: &Path, environment: &str) -> anyhow::Result<bool> {
    let path = environment_dir(root, environment).join("hold.json");
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// The environments a release was recorded for (the directories of `releases/<id>/`).
pub fn recorded_environments(root: &Path, release_id: &str) -> anyhow::Result<Vec<String>> {
    let archive = release_dir(root, release_id);
    anyhow::ensure!(
        archive.join("release.json").is_file(),
        "release {release_id} is not recorded in the deploy repository (releases/{release_id}/release.json)"
    );
    let mut environments: Vec<String> = std::fs::read_dir(&archive)?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|dir| dir.path().is_dir())
        .map(|dir| dir.file_name().to_string_lossy().into_owned())
        .collect();
    environments.sort();
    Ok(environments)
}

/// Per image (`hangang-api`, …), what recorded releases built: the binary's `sha256:…` and the image, oldest
/// release first (so the first match is the release that first shipped those bytes).
pub type EarlierBuilds = std::collections::BTreeMap<String, Vec<(String, PinnedImage)>>;

/// [`EarlierBuilds`] from every record in the deploy repository.
pub fn earlier_builds(root: &Path) -> anyhow::Result<EarlierBuilds> {
    let mut records = Vec::new();
    for release_id in recorded_releases(root)? {
        records.push(record(root, &release_id)?);
    }
    records.sort_by_key(|record| {
        (record["source_time"].as_i64().unwrap_or(i64::MAX), record["release_id"].to_string())
    });
    let mut builds = EarlierBuilds::new();
    for record in &records {
        let (Some(release_id), Some(commit)) =
            (record["release_id"].as_str(), record["source_commit"].as_str())
        else {
            continue;
        };
        let Some(images) = record["images"].as_object() else { continue };
        for (name, image) in images {
            let own =
                image["reference"].as_str().and_then(|r| PinnedImage::parse(r, release_id, commit));
            if let (Some(binary), Some(own)) = (image["binary_sha256"].as_str(), own) {
                builds.entry(name.clone()).or_default().push((binary.to_owned(), own));
            }
        }
    }
    Ok(builds)
}

/// Every release recorded in the deploy repository, by id.
pub fn recorded_releases(root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = root.join("releases");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<String> = std::fs::read_dir(&dir)?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|entry| entry.path().join("release.json").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    Ok(ids)
}

/// The environment's current release, if any.
pub fn current(root: &Path, environment: &str) -> anyhow::Result<Option<ReleaseEntry>> {
    let path = environment_dir(root, environment).join("release.json");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is malformed", path.display()))?,
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A recorded release's record (`releases/<id>/release.json`).
pub fn record(root: &Path, release_id: &str) -> anyhow::Result<serde_json::Value> {
    let path = release_dir(root, release_id).join("release.json");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is malformed", path.display()))
}

/// Writes `contents` to `path`, creating its directory.
pub fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes an environment's generated files (kustomization, manifests, release pointer) into `dir`.
pub fn write_environment(
    dir: &Path,
    entry: &ReleaseEntry,
    files: &EnvironmentFiles,
) -> anyhow::Result<()> {
    write(&dir.join("kustomization.yaml"), kustomization(entry, &files.environment).as_bytes())?;
    write(&dir.join("manifests.yaml"), files.manifests.as_bytes())?;
    let mut pointer = serde_json::to_vec_pretty(entry)?;
    pointer.push(b'\n');
    write(&dir.join("release.json"), &pointer)
}

/// Records a release (its record, its files per environment and `extra` files such as its contract documents)
/// and deploys it to every environment where no later release runs, except the [`PROMOTED_ENVIRONMENTS`],
/// which it only becomes a candidate for.
pub fn apply_release(
    root: &Path,
    entry: &ReleaseEntry,
    record: &[u8],
    environments: &[EnvironmentFiles],
    extra: &[(String, Vec<u8>)],
) -> anyhow::Result<Vec<(String, Outcome)>> {
    let archive = release_dir(root, &entry.release_id);
    write(&archive.join("release.json"), record)?;
    for (name, bytes) in extra {
        write(&archive.join(name), bytes)?;
    }
    let mut outcomes = Vec::new();
    for files in environments {
        write_environment(&archive.join(&files.environment), entry, files)?;
        if PROMOTED_ENVIRONMENTS.contains(&files.environment.as_str()) {
            outcomes.push((files.environment.clone(), Outcome::Candidate));
            continue;
        }
        let outcome = match (current(root, &files.environment)?, hold(root, &files.environment)?) {
            (Some(running), _) if running.supersedes(entry) => {
                Outcome::KeptNewer(running.release_id)
            }
            (_, Some(hold)) if hold.holds_back(entry) => Outcome::Held(hold.rolled_back_to),
            _ => {
                write_environment(&environment_dir(root, &files.environment), entry, files)?;
                // A release of a newer commit ends a rollback's hold.
                remove_hold(root, &files.environment)?;
                Outcome::Deployed
            }
        };
        outcomes.push((files.environment.clone(), outcome));
    }
    Ok(outcomes)
}

/// Appends one line to `environments/<environment>/promotions.jsonl`.
pub fn append_promotion(
    root: &Path,
    environment: &str,
    line: &serde_json::Value,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let path = environment_dir(root, environment).join(PROMOTIONS_FILE);
    std::fs::create_dir_all(environment_dir(root, environment))?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = serde_json::to_vec(line)?;
    bytes.push(b'\n');
    file.write_all(&bytes).with_context(|| format!("cannot append to {}", path.display()))
}

/// Every line of `environments/<environment>/promotions.jsonl`, oldest first.
pub fn promotions(root: &Path, environment: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let path = environment_dir(root, environment).join(PROMOTIONS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(number, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {} is malformed", path.display(), number + 1))
        })
        .collect()
}

/// The release's archived files for `environment` (what a promotion writes), with its entry.
pub fn archived_environment(
    root: &Path,
    release_id: &str,
    environment: &str,
) -> anyhow::Result<(ReleaseEntry, EnvironmentFiles)> {
    let dir = release_dir(root, release_id).join(environment);
    let pointer = dir.join("release.json");
    let bytes = std::fs::read(&pointer).with_context(|| {
        format!(
            "release {release_id} has no files for {environment} ({} is missing)",
            pointer.display()
        )
    })?;
    let entry: ReleaseEntry = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is malformed", pointer.display()))?;
    let manifests = std::fs::read_to_string(dir.join("manifests.yaml"))
        .with_context(|| format!("cannot read {}", dir.join("manifests.yaml").display()))?;
    Ok((entry, EnvironmentFiles { environment: environment.to_owned(), manifests }))
}

/// Why a rollback's hold keeps `entry` from being promoted to `environment`, if it does.
pub fn promotion_held_back(
    root: &Path,
    entry: &ReleaseEntry,
    environment: &str,
) -> anyhow::Result<Option<String>> {
    Ok(hold(root, environment)?.filter(|hold| hold.holds_back(entry)).map(|hold| {
        format!(
            "{environment} is held at {} after a rollback by {} ({}); {} is not newer than what was rolled \
             back from: `cargo xtask lift-hold --env {environment}` first if it should run again",
            hold.rolled_back_to, hold.by, hold.at, entry.release_id
        )
    }))
}

/// Makes a recorded release the desired state of a promoted environment: its archived files are written there
/// and a rollback's hold ends (a person chose this release). Refused when the hold keeps the release back.
/// Returns the release's entry and the release the environment was told to run before.
pub fn apply_promotion(
    root: &Path,
    release_id: &str,
    environment: &str,
) -> anyhow::Result<(ReleaseEntry, Option<ReleaseEntry>)> {
    let (entry, files) = archived_environment(root, release_id, environment)?;
    if let Some(why) = promotion_held_back(root, &entry, environment)? {
        anyhow::bail!(why);
    }
    let previous = current(root, environment)?;
    write_environment(&environment_dir(root, environment), &entry, &files)?;
    remove_hold(root, environment)?;
    Ok((entry, previous))
}

/// Each environment a rollback restored, with the release it ran before.
pub type Restored = Vec<(String, Option<ReleaseEntry>)>;

/// Restores a recorded release's environment files in `environments` and holds each there (see [`Hold`]).
/// Returns the release's entry and, per environment, the release it ran before.
pub fn apply_rollback(
    root: &Path,
    release_id: &str,
    environments: &[String],
    by: &str,
    at: &str,
) -> anyhow::Result<(ReleaseEntry, Restored)> {
    let archive = release_dir(root, release_id);
    let recorded = recorded_environments(root, release_id)?;
    let mut entry = None;
    let mut restored = Vec::new();
    for environment in environments {
        anyhow::ensure!(
            recorded.contains(environment),
            "release {release_id} was not released to `{environment}` (it has: {})",
            recorded.join(", ")
        );
        anyhow::ensure!(
            super::ledger::desired_states(root, environment)?
                .iter()
                .any(|desired| desired.entry.release_id == release_id),
            "{environment} never ran release {release_id}: a rollback returns to a desired state the environment \
             had (promote it instead)"
        );
        let dir = archive.join(environment);
        let target: ReleaseEntry =
            serde_json::from_slice(&std::fs::read(dir.join("release.json"))?)?;
        let manifests = std::fs::read_to_string(dir.join("manifests.yaml"))?;
        let previous = current(root, environment)?;
        let files = EnvironmentFiles { environment: environment.clone(), manifests };
        write_environment(&environment_dir(root, environment), &target, &files)?;
        let mut rolled_back_from =
            hold(root, environment)?.map(|hold| hold.rolled_back_from).unwrap_or_default();
        if let Some(previous) =
            previous.as_ref().filter(|previous| previous.release_id != release_id)
            && !rolled_back_from.contains(previous)
        {
            rolled_back_from.push(previous.clone());
        }
        if !rolled_back_from.is_empty() {
            let hold = Hold {
                rolled_back_to: release_id.to_owned(),
                rolled_back_from,
                by: by.to_owned(),
                at: at.to_owned(),
            };
            let mut bytes = serde_json::to_vec_pretty(&hold)?;
            bytes.push(b'\n');
            write(&environment_dir(root, environment).join("hold.json"), &bytes)?;
        }
        entry = Some(target);
        restored.push((environment.clone(), previous));
    }
    let entry = entry
        .with_context(|| format!("release {release_id} has no environment files to restore"))?;
    Ok((entry, restored))
}
