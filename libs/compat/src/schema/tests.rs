//! One test per rule that proves it fires, and tests that prove the allowed changes pass.

use serde_json::{Value, json};

use super::compare;
use crate::{Verdict, breaking};

fn response_doc(schema: Value) -> Value {
    json!({
        "version": "v9",
        "endpoints": [{"method": "GET", "path": "/v9/thing", "query": [{"name": "lang", "required": false}],
                       "request": null, "response": "Thing"}],
        "dtos": {"Thing": {"direction": "response", "schema": schema}},
    })
}

fn request_doc(schema: Value) -> Value {
    json!({
        "version": "v9",
        "endpoints": [{"method": "POST", "path": "/v9/thing", "query": [], "request": "ThingIn", "response": null}],
        "dtos": {"ThingIn": {"direction": "request", "schema": schema}},
    })
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

fn closed(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values, "x-enum-kind": "closed"})
}

fn open(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values, "x-enum-kind": "open"})
}

/// The rules that fired as breaking, and those reported as allowed.
fn verdicts(baseline: &Value, current: &Value) -> (Vec<&'static str>, Vec<&'static str>) {
    let findings = compare(baseline, current);
    let breaking_rules = breaking(&findings).map(|f| f.rule).collect();
    let allowed_rules =
        findings.iter().filter(|f| f.verdict == Verdict::Allowed).map(|f| f.rule).collect();
    (breaking_rules, allowed_rules)
}

fn assert_breaking(baseline: Value, current: Value, rule: &str) {
    let (breaking_rules, _) = verdicts(&baseline, &current);
    assert_eq!(breaking_rules, vec![rule], "{:#?}", compare(&baseline, &current));
}

fn assert_allowed(baseline: Value, current: Value, rule: &str) {
    let (breaking_rules, allowed_rules) = verdicts(&baseline, &current);
    assert!(breaking_rules.is_empty(), "unexpected breaking: {breaking_rules:?}");
    assert_eq!(allowed_rules, vec![rule]);
}

#[test]
fn identical_documents_have_no_findings() {
    let doc = response_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    assert!(compare(&doc, &doc).is_empty());
}

#[test]
fn removed_required_response_property_breaks_and_names_the_field() {
    let base = response_doc(object(
        json!({"a": {"type": "string"}, "b": {"type": "string"}}),
        &["a", "b"],
    ));
    let cur = response_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    assert_breaking(base.clone(), cur.clone(), "response-property-removed");
    let message = compare(&base, &cur)[0].to_string();
    assert!(message.contains("v9 Thing b"), "{message}");
}

#[test]
fn renamed_response_property_breaks() {
    let base = response_doc(object(json!({"name": {"type": "string"}}), &["name"]));
    let cur = response_doc(object(json!({"title": {"type": "string"}}), &["title"]));
    let (breaking_rules, allowed_rules) = verdicts(&base, &cur);
    assert_eq!(breaking_rules, vec!["response-property-removed"]);
    assert_eq!(allowed_rules, vec!["response-property-added"]);
}

#[test]
fn response_property_that_became_optional_breaks() {
    let base = response_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    let cur = response_doc(object(json!({"a": {"type": "string"}}), &[]));
    assert_breaking(base, cur, "response-property-became-optional");
}

#[test]
fn response_property_that_became_nullable_breaks() {
    let base = response_doc(object(json!({"a": {"type": "integer"}}), &["a"]));
    let cur = response_doc(object(json!({"a": {"type": ["integer", "null"]}}), &["a"]));
    assert_breaking(base, cur, "response-property-became-nullable");
}

#[test]
fn nullable_ref_is_seen_through_any_of() {
    let with_defs = |property: Value| {
        let mut schema = object(json!({"a": property}), &["a"]);
        schema["$defs"] = json!({"Inner": object(json!({"x": {"type": "string"}}), &["x"])});
        response_doc(schema)
    };
    let base = with_defs(json!({"$ref": "#/$defs/Inner"}));
    let cur = with_defs(json!({"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}]}));
    assert_breaking(base, cur, "response-property-became-nullable");
}

#[test]
fn type_change_breaks() {
    let base = response_doc(object(json!({"a": {"type": "integer"}}), &["a"]));
    let cur = response_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    assert_breaking(base, cur, "property-type-changed");
}

#[test]
fn format_change_breaks() {
    let base =
        response_doc(object(json!({"a": {"type": "string", "format": "date-time"}}), &["a"]));
    let cur = response_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    assert_breaking(base, cur, "property-format-changed");
}

#[test]
fn new_value_in_a_closed_response_enum_breaks() {
    let base = response_doc(object(json!({"level": closed(&["low", "high"])}), &["level"]));
    let cur =
        response_doc(object(json!({"level": closed(&["low", "high", "extreme"])}), &["level"]));
    assert_breaking(base.clone(), cur.clone(), "closed-response-enum-value-added");
    assert!(compare(&base, &cur)[0].detail.contains("extreme"));
}

#[test]
fn new_value_in_a_documented_closed_enum_breaks() {
    // schemars writes enums whose variants have doc comments as oneOf of consts.
    let documented = |values: &[&str]| {
        let branches: Vec<Value> = values
            .iter()
            .map(|v| json!({"type": "string", "const": v, "description": "…"}))
            .collect();
        json!({"oneOf": branches, "x-enum-kind": "closed"})
    };
    let base = response_doc(object(json!({"level": documented(&["low"])}), &["level"]));
    let cur = response_doc(object(json!({"level": documented(&["low", "high"])}), &["level"]));
    assert_breaking(base, cur, "closed-response-enum-value-added");
}

#[test]
fn new_value_in_an_open_response_enum_is_allowed() {
    let base = response_doc(object(json!({"reason": open(&["a", "unknown"])}), &["reason"]));
    let cur = response_doc(object(json!({"reason": open(&["a", "b", "unknown"])}), &["reason"]));
    assert_allowed(base, cur, "open-response-enum-value-added");
}

#[test]
fn closed_response_enum_that_became_open_breaks() {
    let base = response_doc(object(json!({"level": closed(&["low"])}), &["level"]));
    let cur = response_doc(object(json!({"level": open(&["low", "unknown"])}), &["level"]));
    let (breaking_rules, _) = verdicts(&base, &cur);
    assert!(breaking_rules.contains(&"response-enum-became-open"), "{breaking_rules:?}");
}

#[test]
fn new_one_of_variant_in_a_response_breaks() {
    let base = response_doc(object(
        json!({"v": {"oneOf": [{"type": "object", "properties": {}}]}}),
        &["v"],
    ));
    let cur = response_doc(object(
        json!({"v": {"oneOf": [{"type": "object", "properties": {}}, {"type": "object", "properties": {}}]}}),
        &["v"],
    ));
    assert_breaking(base, cur, "response-one-of-added");
}

#[test]
fn new_optional_response_property_is_allowed() {
    let base = response_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    let cur = response_doc(object(
        json!({"a": {"type": "string"}, "b": {"type": ["string", "null"]}}),
        &["a"],
    ));
    assert_allowed(base, cur, "response-property-added");
}

#[test]
fn removed_optional_response_property_is_allowed() {
    let base =
        response_doc(object(json!({"a": {"type": "string"}, "b": {"type": "string"}}), &["a"]));
    let cur = response_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    assert_allowed(base, cur, "response-optional-property-removed");
}

#[test]
fn nested_changes_are_found_through_refs_and_arrays() {
    let doc = |inner_required: &[&str]| {
        let mut schema = object(
            json!({"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}}),
            &["items"],
        );
        schema["$defs"] =
            json!({"Item": object(json!({"n": {"type": "integer"}}), inner_required)});
        response_doc(schema)
    };
    let findings = compare(&doc(&["n"]), &doc(&[]));
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule, "response-property-became-optional");
    assert_eq!(findings[0].location, "v9 Thing items[].n");
}

#[test]
fn recursive_types_terminate() {
    let mut schema = object(
        json!({"child": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}}),
        &["child"],
    );
    schema["$defs"] = json!({"Node": object(json!({"child": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}}), &["child"])});
    let doc = response_doc(schema);
    assert!(compare(&doc, &doc).is_empty());
}

#[test]
fn new_required_request_property_breaks() {
    let base = request_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    let cur =
        request_doc(object(json!({"a": {"type": "string"}, "b": {"type": "string"}}), &["a", "b"]));
    assert_breaking(base, cur, "new-required-request-property");
}

#[test]
fn request_property_that_became_required_breaks() {
    let base = request_doc(object(json!({"a": {"type": "string"}}), &[]));
    let cur = request_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    assert_breaking(base, cur, "request-property-became-required");
}

#[test]
fn removed_request_enum_value_breaks() {
    let base = request_doc(object(json!({"env": closed(&["production", "sandbox"])}), &["env"]));
    let cur = request_doc(object(json!({"env": closed(&["production"])}), &["env"]));
    assert_breaking(base, cur, "request-enum-value-removed");
}

#[test]
fn request_property_that_became_non_nullable_breaks() {
    let base = request_doc(object(json!({"a": {"type": ["string", "null"]}}), &[]));
    let cur = request_doc(object(json!({"a": {"type": "string"}}), &[]));
    assert_breaking(base, cur, "request-property-became-non-nullable");
}

#[test]
fn new_optional_request_property_is_allowed() {
    let base = request_doc(object(json!({"a": {"type": "string"}}), &["a"]));
    let cur =
        request_doc(object(json!({"a": {"type": "string"}, "b": {"type": "string"}}), &["a"]));
    assert_allowed(base, cur, "request-optional-property-added");
}

#[test]
fn new_request_enum_value_is_allowed() {
    let base = request_doc(object(json!({"env": closed(&["production"])}), &["env"]));
    let cur = request_doc(object(json!({"env": closed(&["production", "sandbox"])}), &["env"]));
    assert_allowed(base, cur, "request-enum-value-added");
}

#[test]
fn request_integer_widened_to_number_is_allowed() {
    let base = request_doc(object(json!({"a": {"type": "integer"}}), &["a"]));
    let cur = request_doc(object(json!({"a": {"type": "number"}}), &["a"]));
    let (breaking_rules, _) = verdicts(&base, &cur);
    assert!(breaking_rules.is_empty(), "{breaking_rules:?}");
}

#[test]
fn removed_endpoint_breaks() {
    let base = response_doc(object(json!({}), &[]));
    let mut cur = base.clone();
    cur["endpoints"] = json!([]);
    assert_breaking(base, cur, "endpoint-removed");
}

#[test]
fn removed_dto_breaks() {
    let base = response_doc(object(json!({}), &[]));
    let mut cur = base.clone();
    cur["dtos"] = json!({"Other": {"direction": "response", "schema": object(json!({}), &[])}});
    cur["endpoints"][0]["response"] = json!("Other");
    let findings = compare(&base, &cur);
    assert!(
        findings.is_empty(),
        "a renamed type behind the same route is compared, not removed: {findings:?}"
    );
    cur["endpoints"] = json!([]);
    let (breaking_rules, _) = verdicts(&base, &cur);
    assert_eq!(breaking_rules, vec!["dto-removed", "endpoint-removed"]);
}

#[test]
fn new_required_query_parameter_breaks() {
    let base = response_doc(object(json!({}), &[]));
    let mut cur = base.clone();
    cur["endpoints"][0]["query"] =
        json!([{"name": "lang", "required": false}, {"name": "city", "required": true}]);
    assert_breaking(base, cur, "new-required-request-parameter");
}

#[test]
fn query_parameter_that_became_required_breaks() {
    let base = response_doc(object(json!({}), &[]));
    let mut cur = base.clone();
    cur["endpoints"][0]["query"] = json!([{"name": "lang", "required": true}]);
    assert_breaking(base, cur, "request-parameter-became-required");
}

#[test]
fn removed_response_body_breaks() {
    let base = response_doc(object(json!({}), &[]));
    let mut cur = base.clone();
    cur["endpoints"][0]["response"] = Value::Null;
    assert_breaking(base, cur, "response-body-removed");
}
