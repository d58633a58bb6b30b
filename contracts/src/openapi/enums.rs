//! Wire enums as code generators read them best: a plain `enum` array with its kind and per-value descriptions.
//!
//! schemars writes an enum whose values carry doc comments as a `oneOf` of `const` branches, which
//! swift-openapi-generator turns into numbered cases. Here every such schema becomes `type: string` with an
//! `enum` array, the branches' descriptions move to `x-enum-descriptions` (one string per value, in order: the
//! openapi-generator convention, which Redocly also shows), and `x-enum-kind` stays. An open enum also says in
//! its description that it may grow and that any value a client does not know is to be read as `unknown`,
//! the last value of the array, so a generator emits that case and a reader knows to map to it.
//!
//! Only the OpenAPI documents are rewritten: the JSON Schema documents and the released baselines keep the
//! schemars form the compatibility checker compares.

use serde_json::{Map, Value, json};

use crate::enums::{ENUM_KIND_KEYWORD, EnumKind};

/// The keyword carrying one description per `enum` value, in the same order.
pub const DESCRIPTIONS_KEYWORD: &str = "x-enum-descriptions";

/// The value every open enum's unrecognised inputs decode to (`open_enum!`'s generated fallback).
pub const UNKNOWN_VALUE: &str = "unknown";

/// The sentence an open enum's description ends with.
pub const OPEN_NOTE: &str = "Open enum: values may be added within this version; read any value not listed here as `unknown`.";

/// Rewrites every wire enum among `schemas` (the document's `components.schemas`).
pub fn flatten(schemas: &mut Map<String, Value>) {
    for schema in schemas.values_mut() {
        let Some(object) = schema.as_object_mut() else { continue };
        let Some(kind) = object.get(ENUM_KIND_KEYWORD).and_then(Value::as_str).map(str::to_owned)
        else {
            continue;
        };
        if let Some(Value::Array(branches)) = object.remove("oneOf") {
            let (values, descriptions) = values_of(&branches);
            object.insert("type".to_owned(), json!("string"));
            object.insert("enum".to_owned(), json!(values));
            // Values without a doc comment get an empty string, so positions still line up with `enum`.
            if descriptions.iter().any(|description| !description.is_empty()) {
                object.insert(DESCRIPTIONS_KEYWORD.to_owned(), json!(descriptions));
            }
        }
        if kind == EnumKind::Open.as_str() {
            let description = match object.get("description").and_then(Value::as_str) {
                Some(existing) => format!("{existing}\n\n{OPEN_NOTE}"),
                None => OPEN_NOTE.to_owned(),
            };
            object.insert("description".to_owned(), json!(description));
        }
    }
}

/// Every value of the branches with its description (empty when it has none). schemars writes a documented
/// value as a `const` branch and groups the undocumented ones into one `enum` branch.
fn values_of(branches: &[Value]) -> (Vec<Value>, Vec<String>) {
    branches
        .iter()
        .flat_map(|branch| {
            let description =
                branch.get("description").and_then(Value::as_str).unwrap_or_default().to_owned();
            let values = match (branch.get("const"), branch.get("enum")) {
                (Some(value), _) => vec![value.clone()],
                (None, Some(Value::Array(values))) => values.clone(),
                _ => panic!("an enum branch with neither `const` nor `enum`: {branch}"),
            };
            values.into_iter().map(move |value| (value, description.clone()))
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_of_consts_become_an_enum_array_with_descriptions_in_order() {
        let mut schemas = Map::new();
        schemas.insert(
            "LotState".into(),
            json!({
                "description": "A label.",
                "oneOf": [
                    {"const": "full", "type": "string", "description": "No space is free."},
                    {"const": "unknown", "type": "string", "description": "Not known to this build."},
                ],
                "x-enum-kind": "open",
            }),
        );
        schemas.insert(
            "Lang".into(),
            json!({"type": "string", "enum": ["ko", "en"], "x-enum-kind": "closed"}),
        );
        flatten(&mut schemas);
        assert_eq!(
            schemas["LotState"],
            json!({
                "description": format!("A label.\n\n{OPEN_NOTE}"),
                "type": "string",
                "enum": ["full", "unknown"],
                "x-enum-descriptions": ["No space is free.", "Not known to this build."],
                "x-enum-kind": "open",
            })
        );
        assert_eq!(
            schemas["Lang"],
            json!({"type": "string", "enum": ["ko", "en"], "x-enum-kind": "closed"}),
            "a plain closed enum is left as it is"
        );
    }

    #[test]
    fn undocumented_values_keep_their_position() {
        let mut schemas = Map::new();
        schemas.insert(
            "Sky".into(),
            json!({
                "oneOf": [
                    {"enum": ["clear", "overcast"], "type": "string"},
                    {"const": "unknown", "type": "string", "description": "Not known."},
                ],
                "x-enum-kind": "open",
            }),
        );
        flatten(&mut schemas);
        assert_eq!(schemas["Sky"]["enum"], json!(["clear", "overcast", "unknown"]));
        assert_eq!(schemas["Sky"][DESCRIPTIONS_KEYWORD], json!(["", "", "Not known."]));
        assert_eq!(schemas["Sky"]["description"], OPEN_NOTE);
    }
}
