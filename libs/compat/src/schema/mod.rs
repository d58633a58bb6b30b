//! JSON Schema compatibility against a released baseline, judged by what an old iOS `Codable` client does.
//!
//! Input documents have the shape `contracts::catalogue::ContractVersion::schema_document` writes:
//! `{"version", "endpoints": [{method, path, query: [{name, required}], request, response}],
//!   "dtos": {Name: {"direction": "request" | "response", "schema": <draft 2020-12 schema>}}}`.
//!
//! Rules (release.md §6.5). Breaking: an endpoint, response body or DTO removed; a required response property
//! removed, made optional or made nullable; a type or format changed; a new value in a closed response enum; a
//! response enum turned from closed to open; a new `oneOf`/`anyOf` variant in a response; a new required
//! request property or query parameter; a request property or parameter made required; a request enum value
//! removed; a request property made non-nullable. Allowed (reported): new response properties, new optional
//! request properties, new values in open response enums, new request enum values, removed request
//! properties (the server ignores unknown fields), removed optional response properties.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::{Finding, Verdict};

/// The schema keyword that marks an enum open or closed (see `contracts::enums`).
pub const ENUM_KIND_KEYWORD: &str = "x-enum-kind";

/// Compares a baseline schema document with the current one.
pub fn compare(baseline: &Value, current: &Value) -> Vec<Finding> {
    let mut findings = Vec::new();
    let version = baseline["version"].as_str().unwrap_or("?").to_owned();
    let base_dtos = baseline["dtos"].as_object().cloned().unwrap_or_default();
    let cur_dtos = current["dtos"].as_object().cloned().unwrap_or_default();

    // Pairs of (baseline DTO, current DTO) to compare, reached through endpoints first so that a DTO renamed
    // behind an unchanged route is still compared with what the route used to return.
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    let current_endpoints = endpoints(current);
    for (key, base_endpoint) in endpoints(baseline) {
        let route = format!("{version} {key}");
        let Some(cur_endpoint) = current_endpoints.get(&key) else {
            findings.push(breaking("endpoint-removed", &route, "the route is no longer served"));
            continue;
        };
        compare_query(&route, base_endpoint, cur_endpoint, &mut findings);
        for body in ["request", "response"] {
            match (base_endpoint[body].as_str(), cur_endpoint[body].as_str()) {
                (Some(base), Some(cur)) => {
                    pairs.insert((base.to_owned(), cur.to_owned()));
                }
                (Some(_), None) if body == "response" => findings.push(breaking(
                    "response-body-removed",
                    &route,
                    "the route used to return a body and now returns none",
                )),
                (None, Some(cur)) if body == "request" => findings.push(breaking(
                    "new-required-request-body",
                    &route,
                    &format!("the route now requires a `{cur}` body that old apps do not send"),
                )),
                _ => {}
            }
        }
    }
    for name in base_dtos.keys() {
        if cur_dtos.contains_key(name) {
            pairs.insert((name.clone(), name.clone()));
        } else if !pairs.iter().any(|(base, _)| base == name) {
            findings.push(breaking(
                "dto-removed",
                &format!("{version} {name}"),
                "the type is no longer part of the contract",
            ));
        }
    }

    for (base_name, cur_name) in pairs {
        let (Some(base_dto), Some(cur_dto)) = (base_dtos.get(&base_name), cur_dtos.get(&cur_name))
        else {
            if base_dtos.contains_key(&base_name) {
                findings.push(breaking(
                    "dto-removed",
                    &format!("{version} {cur_name}"),
                    &format!("an endpoint refers to `{cur_name}`, which has no schema"),
                ));
            }
            continue;
        };
        let direction = match base_dto["direction"].as_str() {
            Some("request") => Direction::Request,
            _ => Direction::Response,
        };
        let label = if base_name == cur_name {
            format!("{version} {base_name}")
        } else {
            format!("{version} {base_name} (now {cur_name})")
        };
        let mut walker = Walker {
            direction,
            label,
            base_root: &base_dto["schema"],
            cur_root: &cur_dto["schema"],
            visiting: BTreeSet::new(),
            findings: &mut findings,
        };
        walker.compare(&base_dto["schema"], &cur_dto["schema"], "");
    }
    findings.sort();
    findings.dedup();
    findings
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Request,
    Response,
}

fn breaking(rule: &'static str, location: &str, detail: &str) -> Finding {
    Finding {
        verdict: Verdict::Breaking,
        rule,
        location: location.to_owned(),
        detail: detail.to_owned(),
    }
}

fn allowed(rule: &'static str, location: &str, detail: &str) -> Finding {
    Finding {
        verdict: Verdict::Allowed,
        rule,
        location: location.to_owned(),
        detail: detail.to_owned(),
    }
}

fn endpoints(document: &Value) -> BTreeMap<String, &Value> {
    document["endpoints"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|endpoint| {
                    let method = endpoint["method"].as_str().unwrap_or("?");
                    let path = endpoint["path"].as_str().unwrap_or("?");
                    (format!("{method} {path}"), endpoint)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn compare_query(route: &str, base: &Value, cur: &Value, findings: &mut Vec<Finding>) {
    let params = |endpoint: &Value| -> BTreeMap<String, bool> {
        endpoint["query"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|param| {
                        Some((param["name"].as_str()?.to_owned(), param["required"].as_bool()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let base_params = params(base);
    for (name, cur_required) in params(cur) {
        match base_params.get(&name) {
            None if cur_required => findings.push(breaking(
                "new-required-request-parameter",
                &format!("{route} ?{name}"),
                "a new query parameter is required; old apps do not send it",
            )),
            Some(false) if cur_required => findings.push(breaking(
                "request-parameter-became-required",
                &format!("{route} ?{name}"),
                "an optional query parameter became required",
            )),
            _ => {}
        }
    }
}

/// Walks a baseline and a current schema side by side.
struct Walker<'a> {
    direction: Direction,
    label: String,
    base_root: &'a Value,
    cur_root: &'a Value,
    /// `$ref` pairs on the current path, so recursive types terminate.
    visiting: BTreeSet<(String, String)>,
    findings: &'a mut Vec<Finding>,
}

impl Walker<'_> {
    fn location(&self, path: &str) -> String {
        if path.is_empty() { self.label.clone() } else { format!("{} {path}", self.label) }
    }

    fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    fn compare(&mut self, base: &Value, cur: &Value, path: &str) {
        let base_ref = base.get("$ref").and_then(Value::as_str).map(str::to_owned);
        let cur_ref = cur.get("$ref").and_then(Value::as_str).map(str::to_owned);
        if base_ref.is_some() || cur_ref.is_some() {
            let key = (base_ref.unwrap_or_default(), cur_ref.unwrap_or_default());
            if !self.visiting.insert(key.clone()) {
                return;
            }
            let base = resolve(self.base_root, base);
            let cur = resolve(self.cur_root, cur);
            self.compare_resolved(&base, &cur, path);
            self.visiting.remove(&key);
        } else {
            self.compare_resolved(base, cur, path);
        }
    }

    fn compare_resolved(&mut self, base: &Value, cur: &Value, path: &str) {
        let (base_nullable, base) = split_null(base);
        let (cur_nullable, cur) = split_null(cur);
        let here = self.location(path);
        match (self.direction, base_nullable, cur_nullable) {
            (Direction::Response, false, true) => self.push(breaking(
                "response-property-became-nullable",
                &here,
                "can now be null; an old app's non-optional property fails to decode",
            )),
            (Direction::Request, true, false) => self.push(breaking(
                "request-property-became-non-nullable",
                &here,
                "no longer accepts null, which old apps may send",
            )),
            _ => {}
        }
        // A nullable `$ref` resolves to another `$ref` after the null branch is split off.
        if base.get("$ref").is_some() || cur.get("$ref").is_some() {
            self.compare(&base, &cur, path);
            return;
        }

        if let (Some(base_values), Some(cur_values)) = (enum_values(&base), enum_values(&cur)) {
            self.compare_enum(&base, &cur, &base_values, &cur_values, &here);
            return;
        }

        let base_type = type_of(&base);
        let cur_type = type_of(&cur);
        if base_type != cur_type {
            let widened = matches!(
                (self.direction, base_type.as_deref(), cur_type.as_deref()),
                (Direction::Request, Some("integer"), Some("number"))
                    | (Direction::Response, Some("number"), Some("integer"))
            );
            if !widened {
                self.push(breaking(
                    "property-type-changed",
                    &here,
                    &format!(
                        "type changed from {} to {}",
                        base_type.as_deref().unwrap_or("any"),
                        cur_type.as_deref().unwrap_or("any")
                    ),
                ));
                return;
            }
        }
        if base.get("format") != cur.get("format") {
            self.push(breaking(
                "property-format-changed",
                &here,
                &format!(
                    "format changed from {} to {}",
                    base.get("format").unwrap_or(&Value::Null),
                    cur.get("format").unwrap_or(&Value::Null)
                ),
            ));
        }

        let base_variants = variants(&base);
        let cur_variants = variants(&cur);
        if self.direction == Direction::Response && cur_variants.len() > base_variants.len() {
            self.push(breaking(
                "response-one-of-added",
                &here,
                &format!("{} alternatives became {}", base_variants.len(), cur_variants.len()),
            ));
        }
        for (base_variant, cur_variant) in base_variants.iter().zip(&cur_variants) {
            self.compare(base_variant, cur_variant, path);
        }

        match cur_type.as_deref() {
            Some("object") => self.compare_object(&base, &cur, path),
            Some("array") => {
                if let (Some(base_items), Some(cur_items)) = (base.get("items"), cur.get("items")) {
                    self.compare(base_items, cur_items, &format!("{path}[]"));
                }
            }
            _ => {}
        }
    }

    fn compare_enum(
        &mut self,
        base: &Value,
        cur: &Value,
        base_values: &BTreeSet<String>,
        cur_values: &BTreeSet<String>,
        here: &str,
    ) {
        let cur_open = cur.get(ENUM_KIND_KEYWORD).and_then(Value::as_str) == Some("open");
        let base_open = base.get(ENUM_KIND_KEYWORD).and_then(Value::as_str) == Some("open");
        let added: Vec<&String> = cur_values.difference(base_values).collect();
        let removed: Vec<&String> = base_values.difference(cur_values).collect();
        match self.direction {
            Direction::Response => {
                if !base_open && cur_open {
                    self.push(breaking(
                        "response-enum-became-open",
                        here,
                        "a closed enum became open; old apps have no unknown case for it",
                    ));
                }
                for value in added {
                    if base_open && cur_open {
                        self.push(allowed(
                            "open-response-enum-value-added",
                            here,
                            &format!(
                                "new value `{value}` in an open enum (apps map it to unknown)"
                            ),
                        ));
                    } else {
                        self.push(breaking(
                            "closed-response-enum-value-added",
                            here,
                            &format!(
                                "new value `{value}` in a closed enum; old apps fail to decode it"
                            ),
                        ));
                    }
                }
                for value in removed {
                    self.push(allowed(
                        "response-enum-value-removed",
                        here,
                        &format!("value `{value}` is no longer sent"),
                    ));
                }
            }
            Direction::Request => {
                for value in removed {
                    self.push(breaking(
                        "request-enum-value-removed",
                        here,
                        &format!("value `{value}` is no longer accepted; old apps still send it"),
                    ));
                }
                for value in added {
                    self.push(allowed(
                        "request-enum-value-added",
                        here,
                        &format!("value `{value}` is now accepted"),
                    ));
                }
            }
        }
    }

    fn compare_object(&mut self, base: &Value, cur: &Value, path: &str) {
        let empty = Map::new();
        let base_props = base.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let cur_props = cur.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let base_required = required(base);
        let cur_required = required(cur);
        let child =
            |name: &str| if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };

        for (name, base_prop) in base_props {
            let child_path = child(name);
            let here = self.location(&child_path);
            let was_required = base_required.contains(name);
            let Some(cur_prop) = cur_props.get(name) else {
                let finding = match (self.direction, was_required) {
                    (Direction::Response, true) => breaking(
                        "response-property-removed",
                        &here,
                        "a required property is gone; old apps fail with keyNotFound",
                    ),
                    (Direction::Response, false) => allowed(
                        "response-optional-property-removed",
                        &here,
                        "an optional property is no longer sent",
                    ),
                    (Direction::Request, _) => allowed(
                        "request-property-removed",
                        &here,
                        "no longer read; old apps may still send it and it is ignored",
                    ),
                };
                self.push(finding);
                continue;
            };
            let is_required = cur_required.contains(name);
            match self.direction {
                Direction::Response if was_required && !is_required => self.push(breaking(
                    "response-property-became-optional",
                    &here,
                    "may now be omitted; old apps expect it",
                )),
                Direction::Request if !was_required && is_required => self.push(breaking(
                    "request-property-became-required",
                    &here,
                    "is now required; old apps may omit it",
                )),
                _ => {}
            }
            self.compare(base_prop, cur_prop, &child_path);
        }
        for name in cur_props.keys().filter(|name| !base_props.contains_key(*name)) {
            let here = self.location(&child(name));
            let finding = match (self.direction, cur_required.contains(name)) {
                (Direction::Request, true) => breaking(
                    "new-required-request-property",
                    &here,
                    "a new required property; old apps do not send it",
                ),
                (Direction::Request, false) => {
                    allowed("request-optional-property-added", &here, "a new optional property")
                }
                (Direction::Response, _) => {
                    allowed("response-property-added", &here, "a new property; old apps ignore it")
                }
            };
            self.push(finding);
        }
    }
}

/// Follows a local `$ref` (`#/$defs/Name`) within `root`; other schemas are returned unchanged.
fn resolve(root: &Value, schema: &Value) -> Value {
    let mut schema = schema.clone();
    // Refs may chain (a definition that is itself a ref); bound the walk in case of a malformed cycle.
    for _ in 0..16 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else { break };
        let Some(pointer) = reference.strip_prefix('#') else { break };
        let Some(target) = root.pointer(pointer) else { break };
        // Sibling keywords next to `$ref` (2020-12 allows them, e.g. a description) apply too.
        let mut merged = target.clone();
        if let (Some(merged), Some(siblings)) = (merged.as_object_mut(), schema.as_object()) {
            for (key, value) in siblings {
                if key != "$ref" {
                    merged.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
        }
        schema = merged;
    }
    schema
}

/// Splits a schema into (accepts null, the schema without its null branch).
fn split_null(schema: &Value) -> (bool, Value) {
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if non_null.len() != types.len() {
            let mut rest = schema.clone();
            rest["type"] =
                if non_null.len() == 1 { non_null[0].clone() } else { Value::Array(non_null) };
            if let Some(values) = rest.get_mut("enum").and_then(Value::as_array_mut) {
                values.retain(|value| !value.is_null());
            }
            return (true, rest);
        }
    }
    for keyword in ["anyOf", "oneOf"] {
        let Some(branches) = schema.get(keyword).and_then(Value::as_array) else { continue };
        let is_null = |branch: &Value| branch.get("type") == Some(&Value::from("null"));
        if !branches.iter().any(is_null) {
            continue;
        }
        let non_null: Vec<Value> = branches.iter().filter(|b| !is_null(b)).cloned().collect();
        let mut rest = schema.clone();
        if non_null.len() == 1 {
            let object = rest.as_object_mut().expect("a schema with anyOf is an object");
            object.remove(keyword);
            if let Some(branch) = non_null[0].as_object() {
                for (key, value) in branch {
                    object.insert(key.clone(), value.clone());
                }
            }
        } else {
            rest[keyword] = Value::Array(non_null);
        }
        return (true, rest);
    }
    (false, schema.clone())
}

/// The values of a string enum, written as `enum` or as `oneOf`/`anyOf` of `const` (documented variants).
fn enum_values(schema: &Value) -> Option<BTreeSet<String>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(value_text).collect());
    }
    if let Some(value) = schema.get("const") {
        return Some(BTreeSet::from([value_text(value)]));
    }
    for keyword in ["oneOf", "anyOf"] {
        let Some(branches) = schema.get(keyword).and_then(Value::as_array) else { continue };
        let mut values = BTreeSet::new();
        for branch in branches {
            if let Some(value) = branch.get("const") {
                values.insert(value_text(value));
            } else if let Some(list) = branch.get("enum").and_then(Value::as_array) {
                values.extend(list.iter().map(value_text));
            } else {
                return None;
            }
        }
        return Some(values);
    }
    None
}

fn value_text(value: &Value) -> String {
    value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string())
}

fn type_of(schema: &Value) -> Option<String> {
    match schema.get("type")? {
        Value::String(name) => Some(name.clone()),
        other => Some(other.to_string()),
    }
}

fn variants(schema: &Value) -> Vec<Value> {
    ["oneOf", "anyOf"]
        .iter()
        .find_map(|keyword| schema.get(*keyword).and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
