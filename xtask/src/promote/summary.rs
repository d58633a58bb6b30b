//! What a promotion changes, release against release, from their records alone: images, the long-running
//! workloads whose pod template differs in the rendered manifests (those restart), migrations with their
//! kind, the contract changelog from the compatibility checker, config changes, and the risks a person must
//! acknowledge. Pure: the caller decides which release is the base (what production runs, for a promotion;
//! production's desired state, for the candidate record a release writes).

use std::{collections::BTreeMap, fmt, path::Path};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::{deploy::state, migrations::KindName};

/// One release as a promotion compares it: its record, its rendered manifests for the environment, and the
/// contract documents it served.
#[derive(Clone, Debug)]
pub struct Side {
    pub release_id: String,
    /// `release.json`.
    pub record: Value,
    /// The environment's rendered objects.
    pub objects: Vec<Value>,
    /// Served contract documents by version; `None` when the release did not archive them.
    pub contracts: Option<BTreeMap<String, Value>>,
}

impl Side {
    /// A recorded release's side for `environment`, from the deploy repository's archive.
    pub fn archived(root: &Path, release_id: &str, environment: &str) -> anyhow::Result<Side> {
        let record = state::record(root, release_id)?;
        let (_, files) = state::archived_environment(root, release_id, environment)?;
        let objects = crate::manifests::parse_stream(&files.manifests).with_context(|| {
            format!("releases/{release_id}/{environment}/manifests.yaml is not YAML")
        })?;
        let dir = state::release_dir(root, release_id).join(state::CONTRACTS_DIR);
        let contracts = if dir.is_dir() {
            let mut documents = BTreeMap::new();
            for file in std::fs::read_dir(&dir)? {
                let path = file?.path();
                let Some(version) = path.file_stem().and_then(|stem| stem.to_str()) else {
                    continue;
                };
                let document = serde_json::from_slice(&std::fs::read(&path)?)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
                documents.insert(version.to_owned(), document);
            }
            Some(documents)
        } else {
            None
        };
        Ok(Side { release_id: release_id.to_owned(), record, objects, contracts })
    }
}

/// A risk a person must acknowledge by name (`--ack <risk>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    /// A migration that is not expand (or whose kind was not recorded): no rollback to the base across it.
    ContractMigration,
    /// A worker other than collection restarts (forecast, push): alerts and forecasts pause while it rolls.
    WorkerRollout,
    /// The collector restarts: its leader lease moves and a collection round may be skipped.
    CollectionRestart,
    /// PostgreSQL or Redis restarts.
    DatastoreRestart,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::ContractMigration => "contract-migration",
            Risk::WorkerRollout => "worker-rollout",
            Risk::CollectionRestart => "collection-restart",
            Risk::DatastoreRestart => "datastore-restart",
        }
    }
}

/// Whether a release can be promoted without a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Only the api's image changes: no migration, no contract or config change, only the api restarts.
    Low,
    /// Everything else.
    NeedsPerson,
}

/// An image whose pinned reference differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    pub image: String,
    pub from: Option<String>,
    pub to: String,
}

/// A migration the base did not have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewMigration {
    pub name: String,
    /// `None` when the release's record predates kinds (treated as contract).
    pub kind: Option<KindName>,
}

/// One entry of the contract changelog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContractChange {
    pub version: String,
    /// `allowed` or `breaking` (CI refuses breaking ones; listed if a baseline was added since).
    pub verdict: &'static str,
    pub rule: &'static str,
    pub location: String,
    pub detail: String,
}

/// The contract changelog, or why it is unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Contracts {
    Compared(Vec<ContractChange>),
    Unknown(String),
}

/// A changed key of a rendered ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigChange {
    pub config_map: String,
    pub key: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// What promoting `release_id` over `against` changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub release_id: String,
    /// The base release; `None` when the environment runs nothing recorded (everything is new).
    pub against: Option<String>,
    pub images_changed: Vec<ImageChange>,
    /// Long-running workloads (`Deployment/hangang-api`, …) whose pod template differs, or that are new.
    pub restarts: Vec<String>,
    /// Jobs and CronJobs whose template differs (hooks run on every sync either way).
    pub jobs_changed: Vec<String>,
    pub migrations: Vec<NewMigration>,
    pub contracts: Contracts,
    pub config: Vec<ConfigChange>,
    pub risks: Vec<Risk>,
    pub class: Class,
    /// Why the class is not low (empty when it is).
    pub not_low: Vec<String>,
}

/// The pinned image reference of each image in a record (older records name only their own).
fn pinned_images(record: &Value) -> BTreeMap<String, String> {
    record["images"]
        .as_object()
        .map(|images| {
            images
                .iter()
                .filter_map(|(name, image)| {
                    let reference = image["pinned"].as_str().or(image["reference"].as_str())?;
                    Some((name.clone(), reference.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `Kind/name` → (long-running, pod template) of every workload.
fn pod_templates(objects: &[Value]) -> BTreeMap<String, (bool, &Value)> {
    objects
        .iter()
        .filter_map(|object| {
            let kind = object["kind"].as_str()?;
            let name = object["metadata"]["name"].as_str()?;
            let (long_running, template) = match kind {
                "Deployment" | "StatefulSet" | "DaemonSet" => (true, &object["spec"]["template"]),
                "Job" => (false, &object["spec"]["template"]),
                "CronJob" => (false, &object["spec"]["jobTemplate"]["spec"]["template"]),
                _ => return None,
            };
            Some((format!("{kind}/{name}"), (long_running, template)))
        })
        .collect()
}

/// `name` → data of every ConfigMap.
fn config_maps(objects: &[Value]) -> BTreeMap<String, BTreeMap<String, String>> {
    objects
        .iter()
        .filter(|object| object["kind"] == "ConfigMap")
        .filter_map(|object| {
            let name = object["metadata"]["name"].as_str()?;
            let data = object["data"]
                .as_object()
                .map(|data| {
                    data.iter()
                        .map(|(key, value)| {
                            (
                                key.clone(),
                                value.as_str().map_or_else(|| value.to_string(), str::to_owned),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some((name.to_owned(), data))
        })
        .collect()
}

fn contract_changes(candidate: &Side, base: &Side) -> Contracts {
    let (Some(now), Some(before)) = (&candidate.contracts, &base.contracts) else {
        let missing =
            if candidate.contracts.is_none() { &candidate.release_id } else { &base.release_id };
        return Contracts::Unknown(format!(
            "release {missing} did not archive its contract documents"
        ));
    };
    let mut changes = Vec::new();
    for (version, document) in now {
        let Some(baseline) = before.get(version) else {
            changes.push(ContractChange {
                version: version.clone(),
                verdict: "allowed",
                rule: "version-added",
                location: version.clone(),
                detail: format!("{version} is served for the first time"),
            });
            continue;
        };
        for finding in compat::schema::compare(baseline, document) {
            changes.push(ContractChange {
                version: version.clone(),
                verdict: match finding.verdict {
                    compat::Verdict::Allowed => "allowed",
                    compat::Verdict::Breaking => "breaking",
                },
                rule: finding.rule,
                location: finding.location,
                detail: finding.detail,
            });
        }
    }
    for version in before.keys().filter(|version| !now.contains_key(*version)) {
        changes.push(ContractChange {
            version: version.clone(),
            verdict: "breaking",
            rule: "version-removed",
            location: version.clone(),
            detail: format!("{version} is no longer served"),
        });
    }
    Contracts::Compared(changes)
}

/// The risk a restarting long-running workload carries (the api restarting is the low-risk case).
fn restart_risk(workload: &str) -> Option<Risk> {
    let (kind, name) = workload.split_once('/').unwrap_or(("", workload));
    match (kind, name) {
        ("Deployment", "hangang-api") => None,
        (_, "hangang-ingest") => Some(Risk::CollectionRestart),
        ("StatefulSet", _) | (_, "hangang-postgres" | "hangang-redis") => {
            Some(Risk::DatastoreRestart)
        }
        _ => Some(Risk::WorkerRollout),
    }
}

/// What promoting `candidate` changes where `base` runs (or nothing recorded runs, with `None`).
pub fn summarize(candidate: &Side, base: Option<&Side>) -> Summary {
    let before_images = base.map(|base| pinned_images(&base.record)).unwrap_or_default();
    let images_changed: Vec<ImageChange> = pinned_images(&candidate.record)
        .into_iter()
        .filter(|(name, reference)| before_images.get(name) != Some(reference))
        .map(|(image, to)| ImageChange { from: before_images.get(&image).cloned(), image, to })
        .collect();

    let before_templates = base.map(|base| pod_templates(&base.objects)).unwrap_or_default();
    let mut restarts = Vec::new();
    let mut jobs_changed = Vec::new();
    for (workload, (long_running, template)) in pod_templates(&candidate.objects) {
        if before_templates.get(&workload).map(|(_, before)| *before) == Some(template) {
            continue;
        }
        if long_running { restarts.push(workload) } else { jobs_changed.push(workload) }
    }

    let shipped = base.map(|base| state::recorded_migrations(&base.record)).unwrap_or_default();
    let migrations: Vec<NewMigration> = state::recorded_migrations(&candidate.record)
        .into_iter()
        .filter(|migration| shipped.iter().all(|old| old.name != migration.name))
        .map(|migration| NewMigration { name: migration.name, kind: migration.kind })
        .collect();

    let contracts = match base {
        Some(base) => contract_changes(candidate, base),
        None => Contracts::Unknown("nothing recorded runs there: every contract is new".to_owned()),
    };

    let before_config = base.map(|base| config_maps(&base.objects)).unwrap_or_default();
    let mut config = Vec::new();
    let empty = BTreeMap::new();
    let now_config = config_maps(&candidate.objects);
    let names: std::collections::BTreeSet<&String> =
        now_config.keys().chain(before_config.keys()).collect();
    for name in names {
        let (now, before) =
            (now_config.get(name).unwrap_or(&empty), before_config.get(name).unwrap_or(&empty));
        let keys: std::collections::BTreeSet<&String> = now.keys().chain(before.keys()).collect();
        for key in keys {
            if now.get(key) != before.get(key) {
                config.push(ConfigChange {
                    config_map: name.clone(),
                    key: key.clone(),
                    from: before.get(key).cloned(),
                    to: now.get(key).cloned(),
                });
            }
        }
    }

    let mut risks: Vec<Risk> =
        restarts.iter().filter_map(|workload| restart_risk(workload)).collect();
    if migrations.iter().any(|migration| migration.kind != Some(KindName::Expand)) {
        risks.push(Risk::ContractMigration);
    }
    risks.sort();
    risks.dedup();

    let mut not_low = Vec::new();
    if base.is_none() {
        not_low
            .push("nothing recorded runs there yet: the first promotion needs a person".to_owned());
    }
    let other_images: Vec<&str> = images_changed
        .iter()
        .map(|change| change.image.as_str())
        .filter(|image| *image != "hangang-api")
        .collect();
    if !other_images.is_empty() {
        not_low.push(format!("images other than the api change: {}", other_images.join(", ")));
    }
    let other_restarts: Vec<&str> =
        restarts.iter().map(String::as_str).filter(|w| restart_risk(w).is_some()).collect();
    if !other_restarts.is_empty() {
        not_low
            .push(format!("workloads other than the api restart: {}", other_restarts.join(", ")));
    }
    if !migrations.is_empty() {
        not_low.push(format!("{} migration(s)", migrations.len()));
    }
    match &contracts {
        Contracts::Compared(changes) if changes.is_empty() => {}
        Contracts::Compared(changes) => {
            not_low.push(format!("{} contract change(s)", changes.len()))
        }
        Contracts::Unknown(why) => not_low.push(format!("contract changes unknown: {why}")),
    }
    if !config.is_empty() {
        not_low.push(format!("{} config change(s)", config.len()));
    }
    Summary {
        release_id: candidate.release_id.clone(),
        against: base.map(|base| base.release_id.clone()),
        images_changed,
        restarts,
        jobs_changed,
        migrations,
        contracts,
        config,
        risks,
        class: if not_low.is_empty() { Class::Low } else { Class::NeedsPerson },
        not_low,
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let against = self.against.as_deref().unwrap_or("nothing recorded");
        writeln!(f, "Changes of {} against {against}:", self.release_id)?;
        if self.images_changed.is_empty() {
            writeln!(f, "- images changed: none")?;
        }
        for change in &self.images_changed {
            writeln!(
                f,
                "- image {}: {} -> {}",
                change.image,
                change.from.as_deref().unwrap_or("(none)"),
                change.to
            )?;
        }
        writeln!(f, "- restarts: {}", list(&self.restarts))?;
        writeln!(f, "- jobs changed: {}", list(&self.jobs_changed))?;
        if self.migrations.is_empty() {
            writeln!(f, "- migrations: none")?;
        }
        for migration in &self.migrations {
            let kind = match migration.kind {
                Some(KindName::Expand) => "expand",
                Some(KindName::Contract) => "CONTRACT: no rollback across it",
                None => "kind not recorded: treated as contract",
            };
            writeln!(f, "- migration {} ({kind})", migration.name)?;
        }
        match &self.contracts {
            Contracts::Compared(changes) if changes.is_empty() => {
                writeln!(f, "- contract changes: none")?
            }
            Contracts::Compared(changes) => {
                writeln!(f, "- contract changes:")?;
                for change in changes {
                    writeln!(
                        f,
                        "  - {} {} [{}] {}: {}",
                        change.version, change.verdict, change.rule, change.location, change.detail
                    )?;
                }
            }
            Contracts::Unknown(why) => writeln!(f, "- contract changes: unknown ({why})")?,
        }
        if self.config.is_empty() {
            writeln!(f, "- config changes: none")?;
        }
        for change in &self.config {
            writeln!(
                f,
                "- config {}.{}: {} -> {}",
                change.config_map,
                change.key,
                change.from.as_deref().unwrap_or("(unset)"),
                change.to.as_deref().unwrap_or("(unset)")
            )?;
        }
        let risks: Vec<String> = self.risks.iter().map(|risk| risk.as_str().to_owned()).collect();
        writeln!(f, "- risks to acknowledge: {}", list(&risks))?;
        match self.class {
            Class::Low => write!(f, "- class: low (only the api changes)"),
            Class::NeedsPerson => {
                write!(f, "- class: needs a person ({})", self.not_low.join("; "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(name: &str, image: &str) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": name, "annotations": {"app.hangangjari/release-id": image}},
               "spec": {"template": {"spec": {"containers": [{"image": image}]}}}})
    }

    /// A release whose api and workers run the given images, with `migrations` and a v2 document.
    fn side(
        id: &str,
        api: &str,
        workers: &str,
        migrations: &[(&str, &str)],
        contract: Value,
    ) -> Side {
        let mut objects = vec![deployment("hangang-api", api)];
        for worker in ["hangang-ingest", "hangang-push"] {
            objects.push(deployment(worker, &format!("{worker}@{workers}")));
        }
        objects.push(json!({"kind": "Job", "metadata": {"name": "hangang-migrate"},
                            "spec": {"template": {"spec": {"containers": [{"image": api}]}}}}));
        objects.push(json!({"kind": "ConfigMap", "metadata": {"name": "hangang-config"},
                            "data": {"LOG_FORMAT": "json"}}));
        let record = json!({
            "release_id": id,
            "images": {
                "hangang-api": {"pinned": api},
                "hangang-ingest": {"pinned": format!("hangang-ingest@{workers}")},
                "hangang-push": {"pinned": format!("hangang-push@{workers}")},
            },
            "migrations": migrations.iter().map(|(name, kind)| json!({"name": name, "kind": kind})).collect::<Vec<_>>(),
        });
        Side {
            release_id: id.to_owned(),
            record,
            objects,
            contracts: Some(BTreeMap::from([("v2".to_owned(), contract)])),
        }
    }

    fn contract() -> Value {
        serde_json::to_value(contracts::catalogue::versions().last().unwrap().schema_document())
            .unwrap()
    }

    #[test]
    fn an_api_only_change_is_low_and_restarts_only_the_api() {
        let base = side("A", "api@a", "a", &[("1.sql", "expand")], contract());
        let candidate = side("B", "api@b", "a", &[("1.sql", "expand")], contract());
        let summary = summarize(&candidate, Some(&base));
        assert_eq!(summary.class, Class::Low, "{summary}");
        assert_eq!(summary.restarts, ["Deployment/hangang-api"]);
        assert_eq!(summary.jobs_changed, ["Job/hangang-migrate"]);
        assert_eq!(summary.images_changed.len(), 1);
        assert_eq!(summary.images_changed[0].from.as_deref(), Some("api@a"));
        assert!(summary.risks.is_empty());
        assert_eq!(summary.contracts, Contracts::Compared(Vec::new()));
    }

    #[test]
    fn restarts_carry_the_risk_of_what_restarts() {
        assert_eq!(restart_risk("Deployment/hangang-api"), None);
        assert_eq!(restart_risk("Deployment/hangang-ingest"), Some(Risk::CollectionRestart));
        assert_eq!(restart_risk("Deployment/hangang-push"), Some(Risk::WorkerRollout));
        assert_eq!(restart_risk("Deployment/hangang-redis"), Some(Risk::DatastoreRestart));
        assert_eq!(restart_risk("StatefulSet/hangang-postgres"), Some(Risk::DatastoreRestart));
    }

    #[test]
    fn worker_images_restart_workers_and_need_their_acknowledgements() {
        let base = side("A", "api@a", "a", &[], contract());
        let candidate = side("B", "api@a", "b", &[], contract());
        let summary = summarize(&candidate, Some(&base));
        assert_eq!(summary.class, Class::NeedsPerson);
        assert_eq!(summary.restarts, ["Deployment/hangang-ingest", "Deployment/hangang-push"]);
        assert_eq!(summary.risks, [Risk::WorkerRollout, Risk::CollectionRestart]);
    }

    #[test]
    fn migrations_are_those_the_base_lacks_and_a_contract_one_is_a_risk() {
        let base = side("A", "api@a", "a", &[("1.sql", "expand")], contract());
        let expand =
            side("B", "api@b", "a", &[("1.sql", "expand"), ("2.sql", "expand")], contract());
        let summary = summarize(&expand, Some(&base));
        assert_eq!(
            summary.migrations,
            [NewMigration { name: "2.sql".into(), kind: Some(KindName::Expand) }]
        );
        assert!(summary.risks.is_empty(), "an expand migration needs no acknowledgement");
        assert_eq!(summary.class, Class::NeedsPerson, "but it is not low");
        // Against the release that runs, not the one last desired: B was never run, so C brings both.
        let contract_release = side(
            "C",
            "api@c",
            "a",
            &[("1.sql", "expand"), ("2.sql", "expand"), ("3.sql", "contract")],
            contract(),
        );
        let summary = summarize(&contract_release, Some(&base));
        let names: Vec<&str> = summary.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["2.sql", "3.sql"]);
        assert_eq!(summary.risks, [Risk::ContractMigration]);
        assert!(summary.to_string().contains("- migration 3.sql (CONTRACT"), "{summary}");
    }

    #[test]
    fn the_contract_changelog_lists_the_allowed_changes() {
        // The baseline's HomeSummary lacks a property the candidate's has: an allowed addition.
        let mut older = contract();
        let schema = &mut older["dtos"]["HomeSummary"]["schema"];
        let removed = schema["properties"].as_object().unwrap().keys().next().unwrap().clone();
        schema["properties"].as_object_mut().unwrap().remove(&removed);
        if let Some(required) = schema["required"].as_array_mut() {
            required.retain(|name| name.as_str() != Some(removed.as_str()));
        }
        let base = side("A", "api@a", "a", &[], older);
        let candidate = side("B", "api@b", "a", &[], contract());
        let summary = summarize(&candidate, Some(&base));
        let Contracts::Compared(changes) = &summary.contracts else { panic!("{summary}") };
        assert!(
            changes.iter().any(|change| change.verdict == "allowed"
                && change.rule == "response-property-added"
                && change.location.contains(&removed)),
            "{changes:?}"
        );
        assert_eq!(summary.class, Class::NeedsPerson);
        assert!(summary.to_string().contains("- contract changes:\n  - v2 "), "{summary}");
    }

    #[test]
    fn config_changes_and_a_first_promotion_are_never_low() {
        let base = side("A", "api@a", "a", &[], contract());
        let mut candidate = side("B", "api@b", "a", &[], contract());
        let config = candidate.objects.iter_mut().find(|o| o["kind"] == "ConfigMap").unwrap();
        config["data"]["LOG_FORMAT"] = json!("text");
        let summary = summarize(&candidate, Some(&base));
        assert_eq!(
            summary.config,
            [ConfigChange {
                config_map: "hangang-config".into(),
                key: "LOG_FORMAT".into(),
                from: Some("json".into()),
                to: Some("text".into()),
            }]
        );
        assert_eq!(summary.class, Class::NeedsPerson);
        let first = summarize(&candidate, None);
        assert_eq!(first.against, None);
        assert_eq!(first.class, Class::NeedsPerson);
        assert_eq!(first.risks, [Risk::WorkerRollout, Risk::CollectionRestart]);
        assert_eq!(first.images_changed.len(), 3);
    }

    #[test]
    fn an_unarchived_contract_is_unknown_not_unchanged() {
        let mut base = side("A", "api@a", "a", &[], contract());
        base.contracts = None;
        let candidate = side("B", "api@b", "a", &[], contract());
        let summary = summarize(&candidate, Some(&base));
        assert!(matches!(summary.contracts, Contracts::Unknown(_)));
        assert_eq!(summary.class, Class::NeedsPerson);
    }
}
