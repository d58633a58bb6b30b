//! Nullable references in the one form swift-openapi-generator turns into a Swift Optional of the named type.
//!
//! schemars writes an `Option<T>` field whose `T` is a named schema as `anyOf: [{$ref}, {type: "null"}]`. The
//! generator treats a `null` subschema as unsupported and drops the whole property ("Schema \"null\" is not
//! supported", apple/swift-openapi-generator#817), and a `oneOf` spelling fares the same. Its "Handling
//! nullable schemas" rule is that a schema is optional when it is nullable, and OpenAPIKit reads nullability
//! from the `type` keyword of any schema, a reference included. So each such property becomes
//! `{$ref, type: [<the target's type>, "null"]}`: the generator emits `Components.Schemas.T?`.
//!
//! The price: read as strict JSON Schema, the `$ref` still applies to a `null` value and rejects it. The
//! documents are for generating clients, not for validating responses (the contract tests validate bodies
//! against the schemars documents, which keep the exact `anyOf`), and the nullability stays explicit in
//! `type`, so the choice is the generator's.

use serde_json::{Map, Value, json};

/// Rewrites every nullable reference under `value`; `schemas` (the document's `components.schemas`) gives
/// each target's type.
pub fn rewrite(value: &mut Value, schemas: &Map<String, Value>) {
    match value {
        Value::Object(object) => {
            if let Some(reference) = nullable_reference(object) {
                let target = reference
                    .strip_prefix("#/components/schemas/")
                    .and_then(|name| schemas.get(name));
                let target_type = target
                    .and_then(|target| target.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{reference} has no single type to make nullable"));
                object.remove("anyOf");
                object.insert("$ref".to_owned(), json!(reference));
                object.insert("type".to_owned(), json!([target_type, "null"]));
            }
            object.values_mut().for_each(|child| rewrite(child, schemas));
        }
        Value::Array(items) => items.iter_mut().for_each(|child| rewrite(child, schemas)),
        _ => {}
    }
}

/// The reference of an `anyOf` that is exactly one `$ref` and `{type: "null"}`, in either order.
fn nullable_reference(object: &Map<String, Value>) -> Option<String> {
    let Some(Value::Array(branches)) = object.get("anyOf") else { return None };
    let [first, second] = branches.as_slice() else { return None };
    let is_null = |branch: &Value| branch == &json!({"type": "null"});
    let reference = |branch: &Value| {
        let object = branch.as_object()?;
        (object.len() == 1).then(|| object.get("$ref")?.as_str().map(str::to_owned))?
    };
    match (is_null(first), is_null(second)) {
        (false, true) => reference(first),
        (true, false) => reference(second),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> Map<String, Value> {
        let mut schemas = Map::new();
        schemas.insert("Sky".into(), json!({"type": "string", "enum": ["clear"]}));
        schemas.insert("QuietHours".into(), json!({"type": "object", "properties": {}}));
        schemas
    }

    #[test]
    fn nullable_references_carry_null_in_their_type() {
        let mut property = json!({
            "description": "`null` when unknown.",
            "anyOf": [{"$ref": "#/components/schemas/Sky"}, {"type": "null"}],
        });
        rewrite(&mut property, &schemas());
        assert_eq!(
            property,
            json!({
                "description": "`null` when unknown.",
                "$ref": "#/components/schemas/Sky",
                "type": ["string", "null"],
            })
        );
        let mut object = json!({"properties": {"quiet": {"anyOf": [{"type": "null"}, {"$ref": "#/components/schemas/QuietHours"}]}}});
        rewrite(&mut object, &schemas());
        assert_eq!(
            object["properties"]["quiet"],
            json!({"$ref": "#/components/schemas/QuietHours", "type": ["object", "null"]})
        );
    }

    #[test]
    fn other_unions_are_left_alone() {
        let union = json!({"anyOf": [{"$ref": "#/components/schemas/Sky"}, {"type": "integer"}]});
        let mut rewritten = union.clone();
        rewrite(&mut rewritten, &schemas());
        assert_eq!(rewritten, union);
    }
}
