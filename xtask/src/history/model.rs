//! The release ledger joined: the deploy repository's desired states and release records with the rollout
//! records the system wrote (`ops.process_start`, `ops.smoke_run`), as one rollout per desired-state change.
//! Pure: everything is read before, so this is tested with plain values.

use std::collections::{BTreeMap, BTreeSet};

use db::ops::{ProcessStart, Rollouts, SmokeRun};
use serde::Serialize;

use crate::{
    deploy::{
        ledger::DesiredState,
        state::{Hold, RecordedMigration, recorded_migrations},
    },
    migrations::KindName,
};

/// Process starts and smoke runs this long before a desired-state commit still belong to it: the cluster's
/// clock and the releasing machine's may differ by that much.
pub const CLOCK_SLACK_SECONDS: i64 = 120;

/// The position in `states` of the rollout a record of `release_id` at `at` belongs to: the latest desired
/// state naming that release by then (a process of release A after a rollback to A belongs to the rollback).
/// The clock slack only admits a record from just before the first such desired state, never moves one to a
/// later desired state of the same release.
fn rollout_of(states: &[DesiredState], release_id: &str, at: i64) -> Option<usize> {
    let naming = |state: &DesiredState| state.entry.release_id == release_id;
    states.iter().rposition(|state| naming(state) && state.committed_at <= at).or_else(|| {
        states
            .iter()
            .position(|state| naming(state) && state.committed_at - CLOCK_SLACK_SECONDS <= at)
    })
}

/// A recorded release, as its `release.json` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Release {
    pub release_id: String,
    pub source_commit: String,
    /// The commit's subject line, when the record or the source repository knows it.
    pub subject: Option<String>,
    /// Per image (`hangang-api`, …) every digest the record names: index, manifest, config, layers, binary.
    pub digests: BTreeMap<String, Vec<String>>,
    /// Per image the digest the release's manifests run (its own index, or an earlier release's when the
    /// binary did not change).
    pub index: BTreeMap<String, String>,
    #[serde(serialize_with = "serialize_migrations")]
    pub migrations: Vec<RecordedMigration>,
}

fn serialize_migrations<S: serde::Serializer>(
    migrations: &[RecordedMigration],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut sequence = serializer.serialize_seq(Some(migrations.len()))?;
    for migration in migrations {
        sequence.serialize_element(&MigrationView::from(migration))?;
    }
    sequence.end()
}

/// A migration in the output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigrationView {
    pub name: String,
    /// `expand`, `contract`, or `unknown` for records that predate kinds.
    pub kind: &'static str,
}

impl From<&RecordedMigration> for MigrationView {
    fn from(migration: &RecordedMigration) -> Self {
        MigrationView {
            name: migration.name.clone(),
            kind: migration.kind.map_or("unknown", KindName::as_str),
        }
    }
}

impl Release {
    pub fn from_record(record: &serde_json::Value) -> Option<Release> {
        let mut digests = BTreeMap::new();
        let mut index = BTreeMap::new();
        for (binary, image) in record["images"].as_object()? {
            let mut all: Vec<String> = ["index", "manifest", "config", "binary_sha256"]
                .iter()
                .filter_map(|field| image[*field].as_str().map(str::to_owned))
                .collect();
            if let Some(layers) = image["layers"].as_array() {
                all.extend(layers.iter().filter_map(|layer| layer.as_str().map(str::to_owned)));
            }
            // What the manifests run: `pinned` (an earlier release's image when the binary did not change),
            // else, in records that predate it, this release's own index.
            let pinned = image["pinned"]
                .as_str()
                .and_then(|reference| reference.split_once('@').map(|(_, digest)| digest))
                .or_else(|| image["index"].as_str());
            if let Some(pinned) = pinned {
                index.insert(binary.clone(), pinned.to_owned());
            }
            digests.insert(binary.clone(), all);
        }
        Some(Release {
            release_id: record["release_id"].as_str()?.to_owned(),
            source_commit: record["source_commit"].as_str()?.to_owned(),
            subject: record["source_subject"].as_str().map(str::to_owned),
            digests,
            index,
            migrations: recorded_migrations(record),
        })
    }

    /// Which of this release's images `digest` (`sha256:…` or its hex, or a prefix of either of at least 12
    /// hex digits) is, and as what.
    pub fn find_digest(&self, digest: &str) -> Option<String> {
        let wanted = digest.trim_start_matches("sha256:");
        if wanted.len() < 12 {
            return None;
        }
        self.digests.iter().find_map(|(binary, digests)| {
            digests
                .iter()
                .find(|candidate| candidate.trim_start_matches("sha256:").starts_with(wanted))
                .map(|found| format!("{binary} {found}"))
        })
    }
}

/// How a desired state came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Release,
    /// `cargo xtask promote` (the commit carries `Promoted-By:`).
    Promotion,
    Rollback,
}

/// The smoke outcome of a rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Smoke {
    pub passed: bool,
    pub finished_at: i64,
    pub checks: usize,
    pub failed: Vec<String>,
}

impl From<&SmokeRun> for Smoke {
    fn from(run: &SmokeRun) -> Self {
        Smoke {
            passed: run.passed,
            finished_at: run.finished_at.as_unix_seconds(),
            checks: run.checks.len(),
            failed: run
                .checks
                .iter()
                .filter(|check| !check.passed)
                .map(|c| c.name.clone())
                .collect(),
        }
    }
}

/// One desired-state change of one environment and what the records say happened after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rollout {
    pub environment: String,
    pub release_id: String,
    pub source_commit: String,
    pub subject: Option<String>,
    pub cause: Cause,
    /// The deploy repository commit and its time (unix seconds).
    pub deploy_commit: String,
    pub desired_at: i64,
    /// The first process of the release that started in the environment after the desired state changed;
    /// `None` when no record shows it running (not synced yet, or no rollout records read).
    pub started_running_at: Option<i64>,
    /// Process starts of the release in this rollout, per service.
    pub processes: BTreeMap<String, usize>,
    /// Images whose digest differs from the release the environment was told to run before.
    pub images_changed: Vec<String>,
    /// Migrations no release desired in the environment before had.
    pub migrations_applied: Vec<MigrationView>,
    pub smoke: Option<Smoke>,
}

impl Rollout {
    /// When it took effect as far as the records know: when it started running, else when it was desired.
    pub fn effective_at(&self) -> i64 {
        self.started_running_at.unwrap_or(self.desired_at)
    }
}

/// One environment now: what its desired state names and what its processes last reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnvironmentNow {
    pub environment: String,
    pub desired: Option<String>,
    /// Per service, the release of its most recent process start.
    pub running: BTreeMap<String, String>,
    /// Some process reports a release other than the desired one.
    pub drift: bool,
    pub held: Option<Hold>,
}

/// Everything `cargo xtask history` shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ledger {
    pub environments: Vec<EnvironmentNow>,
    /// Newest first.
    pub rollouts: Vec<Rollout>,
    #[serde(skip)]
    pub releases: BTreeMap<String, Release>,
    /// Whether rollout records were read (without them nothing is known to have run).
    pub with_rollout_records: bool,
    /// Every promotion and refused promotion (`environments/<env>/promotions.jsonl`), oldest first.
    pub promotions: Vec<serde_json::Value>,
}

/// The inputs, read from git and the database by the caller.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Per environment, oldest first.
    pub desired: BTreeMap<String, Vec<DesiredState>>,
    pub holds: BTreeMap<String, Hold>,
    pub releases: BTreeMap<String, Release>,
    pub rollouts: Option<Rollouts>,
    pub promotions: Vec<serde_json::Value>,
}

pub fn join(inputs: Inputs) -> Ledger {
    let records = inputs.rollouts.clone().unwrap_or_default();
    let mut rollouts = Vec::new();
    let mut environments = Vec::new();
    for (environment, states) in &inputs.desired {
        let starts: Vec<&ProcessStart> =
            records.process_starts.iter().filter(|s| s.environment == *environment).collect();
        let smokes: Vec<&SmokeRun> =
            records.smoke_runs.iter().filter(|s| s.environment == *environment).collect();
        let mut migrations_before: BTreeSet<String> = BTreeSet::new();
        for (position, state) in states.iter().enumerate() {
            let id = &state.entry.release_id;
            let release = inputs.releases.get(id);
            let belongs =
                |release_id: &str, at: i64| rollout_of(states, release_id, at) == Some(position);
            let mine: Vec<&&ProcessStart> = starts
                .iter()
                .filter(|start| belongs(&start.release_id, start.started_at.as_unix_seconds()))
                .collect();
            let mut processes = BTreeMap::new();
            for start in &mine {
                *processes.entry(start.service.clone()).or_insert(0) += 1;
            }
            let smoke = smokes
                .iter()
                .filter(|run| belongs(&run.release_id, run.finished_at.as_unix_seconds()))
                .max_by_key(|run| run.finished_at)
                .map(|run| Smoke::from(*run));
            let previous = position
                .checked_sub(1)
                .and_then(|before| inputs.releases.get(&states[before].entry.release_id));
            let images_changed = match (release, previous) {
                (Some(release), Some(previous)) => release
                    .index
                    .iter()
                    .filter(|(binary, digest)| previous.index.get(*binary) != Some(*digest))
                    .map(|(binary, _)| binary.clone())
                    .collect(),
                (Some(release), None) => release.index.keys().cloned().collect(),
                (None, _) => Vec::new(),
            };
            let migrations_applied = release
                .map(|release| {
                    release
                        .migrations
                        .iter()
                        .filter(|migration| !migrations_before.contains(&migration.name))
                        .map(MigrationView::from)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(release) = release {
                migrations_before.extend(release.migrations.iter().map(|m| m.name.clone()));
            }
            let cause = if state.trailers.contains_key("Rollback-From")
                || state.subject.starts_with("rollback ")
            {
                Cause::Rollback
            } else if state.trailers.contains_key("Promoted-By") {
                Cause::Promotion
            } else {
                Cause::Release
            };
            rollouts.push(Rollout {
                environment: environment.clone(),
                release_id: id.clone(),
                source_commit: state.entry.source_commit.clone(),
                subject: release.and_then(|release| release.subject.clone()),
                cause,
                deploy_commit: state.commit.clone(),
                desired_at: state.committed_at,
                started_running_at: mine
                    .iter()
                    .map(|start| start.started_at.as_unix_seconds())
                    .min(),
                processes,
                images_changed,
                migrations_applied,
                smoke,
            });
        }
        let mut running = BTreeMap::new();
        for start in &starts {
            // Oldest first, so the last write per service is its most recent start.
            running.insert(start.service.clone(), start.release_id.clone());
        }
        let desired = states.last().map(|state| state.entry.release_id.clone());
        // Each environment has its own database: no record of one here says nothing about it.
        let drift = desired
            .as_ref()
            .is_some_and(|desired| running.values().any(|release| release != desired));
        environments.push(EnvironmentNow {
            environment: environment.clone(),
            desired,
            running,
            drift,
            held: inputs.holds.get(environment).cloned(),
        });
    }
    rollouts.sort_by(|a, b| {
        (b.effective_at(), b.desired_at, &b.environment).cmp(&(
            a.effective_at(),
            a.desired_at,
            &a.environment,
        ))
    });
    Ledger {
        environments,
        rollouts,
        releases: inputs.releases,
        with_rollout_records: inputs.rollouts.is_some(),
        promotions: inputs.promotions,
    }
}

impl Ledger {
    /// Per environment, the rollout that was running at `at` (unix seconds): the latest to have started
    /// running by then, or, without rollout records of it, the latest desired by then.
    pub fn at(&self, at: i64) -> Vec<&Rollout> {
        let mut found: BTreeMap<&str, &Rollout> = BTreeMap::new();
        for rollout in self.rollouts.iter().rev() {
            if rollout.effective_at() <= at {
                found.insert(&rollout.environment, rollout);
            }
        }
        found.into_values().collect()
    }

    /// The desired state `environment` was last seen running (by its process starts): what a promotion
    /// compares with. `None` when no record shows anything of ours running there.
    pub fn last_seen_running(&self, environment: &str) -> Option<&Rollout> {
        self.rollouts
            .iter()
            .filter(|rollout| {
                rollout.environment == environment && rollout.started_running_at.is_some()
            })
            .max_by_key(|rollout| rollout.started_running_at)
    }
}

#[cfg(test)]
mod tests {
    use contracts::Timestamp;
    use db::ops::SmokeCheck;

    use super::*;
    use crate::deploy::state::ReleaseEntry;

    fn release(id: &str, api: &str, migrations: &[(&str, KindName)]) -> Release {
        Release {
            release_id: id.to_owned(),
            source_commit: format!("{id}-commit"),
            subject: Some(format!("subject of {id}")),
            digests: BTreeMap::from([("hangang-api".to_owned(), vec![api.to_owned()])]),
            index: BTreeMap::from([
                ("hangang-api".to_owned(), api.to_owned()),
                ("hangang-push".to_owned(), "sha256:push".to_owned()),
            ]),
            migrations: migrations
                .iter()
                .map(|(name, kind)| RecordedMigration {
                    name: (*name).to_owned(),
                    kind: Some(*kind),
                })
                .collect(),
        }
    }

    fn desired(id: &str, at: i64, rollback: bool) -> DesiredState {
        DesiredState {
            commit: format!("deploy-{at}"),
            committed_at: at,
            environment: "production".to_owned(),
            entry: ReleaseEntry {
                release_id: id.to_owned(),
                source_commit: format!("{id}-commit"),
                source_time: at,
            },
            subject: if rollback {
                format!("rollback to release {id}")
            } else {
                format!("release {id}")
            },
            trailers: BTreeMap::new(),
        }
    }

    fn start(service: &str, id: &str, at: i64) -> ProcessStart {
        ProcessStart {
            service: service.to_owned(),
            release_id: id.to_owned(),
            source_commit: format!("{id}-commit"),
            environment: "production".to_owned(),
            host: format!("{service}-{at}"),
            pid: 1,
            started_at: Timestamp::from_unix_seconds(at).unwrap(),
        }
    }

    fn smoke(id: &str, at: i64, passed: bool) -> SmokeRun {
        SmokeRun {
            id: None,
            release_id: id.to_owned(),
            environment: "production".to_owned(),
            started_at: Timestamp::from_unix_seconds(at - 30).unwrap(),
            finished_at: Timestamp::from_unix_seconds(at).unwrap(),
            passed,
            rounds: 1,
            checks: vec![SmokeCheck {
                name: "api /healthz".to_owned(),
                passed,
                detail: String::new(),
                duration_ms: 3,
            }],
            answered: BTreeMap::new(),
        }
    }

    /// A released at 1000 and ran; B (new api image, an expand migration) desired at 2000 and ran; a rollback
    /// to A at 3000 ran again; C desired at 4000 never ran.
    fn ledger() -> Ledger {
        let a = release("A", "sha256:api-a", &[("1_base.sql", KindName::Expand)]);
        let b = release(
            "B",
            "sha256:api-b",
            &[("1_base.sql", KindName::Expand), ("2_note.sql", KindName::Expand)],
        );
        let c = release("C", "sha256:api-b", &[("3_drop.sql", KindName::Contract)]);
        join(Inputs {
            desired: BTreeMap::from([(
                "production".to_owned(),
                vec![
                    desired("A", 1000, false),
                    desired("B", 2000, false),
                    desired("A", 3000, true),
                    {
                        let mut promoted = desired("C", 4000, false);
                        promoted.subject = "promote release C to production".to_owned();
                        promoted.trailers.insert("Promoted-By".to_owned(), "Kim Minji".to_owned());
                        promoted
                    },
                ],
            )]),
            holds: BTreeMap::new(),
            promotions: Vec::new(),
            releases: [a, b, c].into_iter().map(|r| (r.release_id.clone(), r)).collect(),
            rollouts: Some(Rollouts {
                process_starts: vec![
                    start("api", "A", 1010),
                    start("api", "A", 2950), // before the rollback's commit, within the slack: A's first
                    start("push", "A", 1020),
                    start("api", "B", 1950), // within the clock slack of B's commit
                    start("api", "B", 2990), // seconds before the rollback: still B's
                    start("api", "A", 3050),
                ],
                smoke_runs: vec![
                    smoke("A", 1100, true),
                    smoke("B", 2100, false),
                    smoke("A", 3100, true),
                ],
            }),
        })
    }

    #[test]
    fn each_desired_state_is_a_rollout_with_what_the_records_say_ran() {
        let ledger = ledger();
        let summary: Vec<(&str, Cause, Option<i64>, Option<bool>)> = ledger
            .rollouts
            .iter()
            .map(|r| {
                (
                    r.release_id.as_str(),
                    r.cause,
                    r.started_running_at,
                    r.smoke.as_ref().map(|s| s.passed),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("C", Cause::Promotion, None, None),
                ("A", Cause::Rollback, Some(3050), Some(true)),
                ("B", Cause::Release, Some(1950), Some(false)),
                ("A", Cause::Release, Some(1010), Some(true)),
            ]
        );
        let b = &ledger.rollouts[2];
        assert_eq!(b.images_changed, ["hangang-api"]);
        assert_eq!(b.processes, BTreeMap::from([("api".to_owned(), 2)]));
        assert_eq!(
            b.migrations_applied,
            [MigrationView { name: "2_note.sql".into(), kind: "expand" }]
        );
        assert_eq!(b.smoke.as_ref().unwrap().failed, ["api /healthz"]);
        let rollback = &ledger.rollouts[1];
        assert!(rollback.migrations_applied.is_empty(), "A's migrations were applied before");
        assert_eq!(rollback.processes, BTreeMap::from([("api".to_owned(), 1)]));
        let first = &ledger.rollouts[3];
        assert_eq!(first.images_changed, ["hangang-api", "hangang-push"]);
        assert_eq!(
            first.processes,
            BTreeMap::from([("api".to_owned(), 2), ("push".to_owned(), 1)])
        );
    }

    #[test]
    fn what_ran_at_a_time_and_drift_come_from_the_records() {
        let ledger = ledger();
        let at = |time| ledger.at(time).iter().map(|r| r.release_id.clone()).collect::<Vec<_>>();
        assert_eq!(at(500), Vec::<String>::new());
        assert_eq!(at(1500), ["A"]);
        assert_eq!(at(2500), ["B"]);
        assert_eq!(at(3500), ["A"], "the rollback");
        assert_eq!(at(9999), ["C"], "desired, never seen running: the latest desired state");
        let production = &ledger.environments[0];
        assert_eq!(production.desired.as_deref(), Some("C"));
        assert_eq!(production.running["api"], "A");
        assert!(production.drift, "C is desired, A answers");
        // A promotion compares with what runs (the rollback to A), not with C, the last desired state.
        let running = ledger.last_seen_running("production").unwrap();
        assert_eq!((running.release_id.as_str(), running.cause), ("A", Cause::Rollback));
        assert!(ledger.last_seen_running("staging").is_none());
    }

    #[test]
    fn a_digest_names_its_release_and_image() {
        let ledger = ledger();
        let found: Vec<(&str, String)> = ledger
            .releases
            .values()
            .filter_map(|release| {
                Some((release.release_id.as_str(), release.find_digest("sha256:api-a")?))
            })
            .collect();
        assert!(found.is_empty(), "a prefix needs 12 hex digits");
        let release = release("X", "sha256:0123456789abcdef", &[]);
        assert_eq!(
            release.find_digest("0123456789ab").as_deref(),
            Some("hangang-api sha256:0123456789abcdef")
        );
        assert_eq!(release.find_digest("sha256:0123456789ac"), None);
    }
}
