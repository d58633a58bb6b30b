//! The contract stages: every served API version against each of its released baselines, the protobuf
//! descriptor set against each released one, and the localization keys against the String Catalog.
//!
//! Baselines live in `contracts/released/`: `api/<version>/<label>.json` (the schema document as released)
//! and `proto/<label>.binpb` (the descriptor set as released). Releasing adds a file; files are never edited.

use std::path::Path;

use anyhow::{Context, bail};
use prost::Message;

use crate::{codegen, project_root, stages::Stages};

pub fn run() -> anyhow::Result<()> {
    let root = project_root();
    // Every check runs, so one report shows all that broke.
    let mut stages = Stages::new("contracts", 3);
    for (name, stage) in [
        ("api shape", api_shape as fn(&Path) -> anyhow::Result<()>),
        ("protobuf breaking", protobuf_breaking),
        ("localization keys", localization_keys),
    ] {
        if let Err(error) = stages.check(name, || stage(&root)) {
            eprintln!("{error:#}");
        }
    }
    anyhow::ensure!(stages.passed(), "contract checks failed");
    Ok(())
}

/// Each served version's current schema document against every released baseline of that version.
fn api_shape(root: &Path) -> anyhow::Result<()> {
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
    // A released version that is no longer served breaks every app still on it.
    for entry in std::fs::read_dir(&released)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !versions.iter().any(|version| version.version == name) {
            problems.push(format!(
                "contracts/released/api/{name}: version {name} was released but is no longer served"
            ));
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
