//! Pins every public DTO's JSON Schema and canonical example with insta snapshots, and checks the conventions
//! every body must follow (timestamps, enum kinds, round trips).
//!
//! Run `cargo insta review` (or delete and re-run with `INSTA_UPDATE=always`) after an intended change; CI runs
//! with `INSTA_UPDATE=no`, so an unreviewed change fails, and the snapshot directory must hold exactly the
//! snapshots this file produces, so a removed DTO cannot leave an orphan behind.

use std::collections::BTreeSet;

use contracts::{catalogue, time::Timestamp};
use serde_json::Value;

fn snapshot_names() -> Vec<(String, Value)> {
    let mut snapshots = Vec::new();
    for version in catalogue::versions() {
        for dto in &version.dtos {
            snapshots.push((format!("{}__{}__schema", version.version, dto.name), dto.schema()));
            snapshots.push((format!("{}__{}__example", version.version, dto.name), dto.example()));
        }
    }
    snapshots
}

#[test]
fn schemas_and_examples_match_their_snapshots() {
    for (name, value) in snapshot_names() {
        insta::assert_json_snapshot!(name, value);
    }
}

#[test]
fn no_orphan_snapshots() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots");
    let expected: BTreeSet<String> =
        snapshot_names().into_iter().map(|(name, _)| format!("it__{name}.snap")).collect();
    let found: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".snap"))
        .collect();
    let orphans: Vec<_> = found.difference(&expected).collect();
    assert!(orphans.is_empty(), "snapshots no test produces (delete them): {orphans:?}");
}

#[test]
fn examples_round_trip_through_their_types() {
    for version in catalogue::versions() {
        for dto in &version.dtos {
            if let Err(error) = dto.check_round_trip() {
                panic!("{} {}: {error}", version.version, dto.name);
            }
        }
    }
}

/// Every string in an example that reads as a date-time must be the canonical whole-second UTC form.
#[test]
fn example_timestamps_are_whole_second_utc() {
    fn walk(value: &Value, path: &str, bad: &mut Vec<String>) {
        match value {
            Value::String(text) if text.len() >= 20 && text.as_bytes()[10] == b'T' => {
                let canonical = text.parse::<Timestamp>().ok().map(|t| t.to_string());
                if canonical.as_deref() != Some(text.as_str()) {
                    bad.push(format!("{path}: {text}"));
                }
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, item)| walk(item, &format!("{path}[{i}]"), bad)),
            Value::Object(map) => {
                map.iter().for_each(|(k, v)| walk(v, &format!("{path}.{k}"), bad))
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for version in catalogue::versions() {
        for dto in &version.dtos {
            walk(&dto.example(), &format!("{} {}", version.version, dto.name), &mut bad);
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Every enum in every schema declares whether it is open or closed, so the compatibility checker and app
/// developers know which may grow.
#[test]
fn every_enum_declares_its_kind() {
    fn walk(value: &Value, path: &str, bad: &mut Vec<String>) {
        let Value::Object(map) = value else {
            if let Value::Array(items) = value {
                items.iter().for_each(|item| walk(item, path, bad));
            }
            return;
        };
        // schemars writes documented variants as `oneOf` branches with `const`, and groups undocumented
        // ones into a branch with `enum`.
        let is_enum = map.contains_key("enum")
            || map.get("oneOf").and_then(Value::as_array).is_some_and(|branches| {
                branches
                    .iter()
                    .all(|branch| branch.get("const").is_some() || branch.get("enum").is_some())
            });
        if is_enum {
            if !matches!(map.get("x-enum-kind").and_then(Value::as_str), Some("open" | "closed")) {
                bad.push(path.to_owned());
            }
            return; // its branches are values, not further enums
        }
        for (key, child) in map {
            walk(child, &format!("{path}/{key}"), bad);
        }
    }
    let mut bad = Vec::new();
    for version in catalogue::versions() {
        for dto in &version.dtos {
            walk(&dto.schema(), &format!("{} {}", version.version, dto.name), &mut bad);
        }
    }
    assert!(bad.is_empty(), "enums without x-enum-kind: {bad:#?}");
}

#[test]
fn every_endpoint_body_is_a_catalogued_dto() {
    for version in catalogue::versions() {
        for endpoint in &version.endpoints {
            for name in endpoint.request.iter().chain(endpoint.response.iter()) {
                assert!(
                    version.dto(name).is_some(),
                    "{} {} {}: `{name}` is not in the catalogue",
                    version.version,
                    endpoint.method,
                    endpoint.path
                );
            }
        }
    }
}

#[test]
fn responses_are_described_as_serialized_and_requests_as_deserialized() {
    let v2 = catalogue::versions().into_iter().find(|v| v.version == "v2").unwrap();
    // `Subscription.weekdays` has `#[serde(default)]`: optional when the app sends it...
    let request = v2.dto("PreferencesRequest").unwrap().schema();
    let required = &request["$defs"]["Subscription"]["required"];
    assert!(!required.as_array().unwrap().contains(&"weekdays".into()), "{required}");
    // ...but always present when the server answers.
    let response = v2.dto("Preferences").unwrap().schema();
    let required = &response["$defs"]["Subscription"]["required"];
    assert!(required.as_array().unwrap().contains(&"weekdays".into()), "{required}");
}
