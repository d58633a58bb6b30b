//! OpenAPI 3.1 documents, generated from the [`catalogue`](crate::catalogue) and the DTOs' JSON Schemas.
//!
//! OpenAPI 3.1 uses JSON Schema 2020-12, so the schemars output is used as is: each DTO's `$defs` become
//! `components/schemas`, and `$ref`s are rewritten to point there. A request type whose name clashes with a
//! differently shaped response type (the same Rust type seen with the deserialize contract, where defaulted
//! fields are optional) is published as `<Name>Input`. Success statuses follow the routes' semantics:
//! `201` for `POST`, `204` for `DELETE`, `200` otherwise; every v2 route also documents the error envelope.

use serde_json::{Map, Value, json};

use crate::catalogue::{ContractVersion, Direction};

/// The OpenAPI document of one contract version.
pub fn document(version: &ContractVersion) -> Value {
    let mut components = Map::new();
    let mut dto_refs = Map::new();
    // Responses first, so request-side clashes are the ones renamed.
    let mut ordered: Vec<_> = version.dtos.iter().collect();
    ordered.sort_by_key(|dto| dto.direction == Direction::Request);
    for dto in ordered {
        let mut schema = dto.schema();
        let defs =
            schema.as_object_mut().and_then(|object| object.remove("$defs")).unwrap_or_default();
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
        }
        let mut renames = Vec::new();
        let mut entries: Vec<(String, Value)> =
            defs.as_object().cloned().unwrap_or_default().into_iter().collect();
        entries.push((dto.name.to_owned(), schema));
        for (name, _) in &entries {
            let clashes = |candidate: &str| {
                components.get(candidate).is_some_and(|existing| {
                    let mine = &entries.iter().find(|(n, _)| n == name).expect("listed").1;
                    existing != mine
                })
            };
            if dto.direction == Direction::Request && clashes(name) {
                renames.push((name.clone(), format!("{name}Input")));
            }
        }
        for (name, mut schema) in entries {
            rewrite_refs(&mut schema, &renames);
            let published = renames
                .iter()
                .find(|(from, _)| *from == name)
                .map_or(name.clone(), |(_, to)| to.clone());
            if name == dto.name {
                dto_refs.insert(
                    dto.name.to_owned(),
                    json!({"$ref": format!("#/components/schemas/{published}")}),
                );
            }
            components.insert(published, schema);
        }
    }

    let mut paths = Map::new();
    for endpoint in &version.endpoints {
        let mut parameters: Vec<Value> = endpoint
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(endpoint.query.iter().map(|param| {
            json!({"name": param.name, "in": "query", "required": param.required, "schema": {"type": "string"}})
        }));
        let method = endpoint.method.to_ascii_lowercase();
        let (status, description) = match endpoint.method {
            "POST" => ("201", "created"),
            "DELETE" => ("204", "deleted"),
            _ => ("200", "ok"),
        };
        let success = match endpoint.response {
            Some(name) => json!({"description": description,
                                 "content": {"application/json": {"schema": dto_refs[name].clone()}}}),
            None => json!({"description": description}),
        };
        let mut responses = Map::new();
        responses.insert(status.to_owned(), success);
        // v1 predates the documented envelope; it is served there too, but only v2 publishes its schema.
        if let Some(envelope) = dto_refs.get("ErrorEnvelope") {
            responses.insert(
                "default".to_owned(),
                json!({"description": "error", "content": {"application/json": {"schema": envelope.clone()}}}),
            );
        }
        let mut operation = json!({
            "operationId": operation_id(endpoint.method, endpoint.path),
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(name) = endpoint.request {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": dto_refs[name].clone()}}});
        }
        paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("path items are objects")
            .insert(method, operation);
    }

    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Hangangjari API",
            "version": version.version,
            "description": format!("The {} app-facing API. Generated from the contracts crate.", version.version),
        },
        "paths": paths,
        "components": {"schemas": components},
    })
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        id.push('_');
        let segment = segment.trim_start_matches('{').trim_end_matches('}');
        id.push_str(&segment.replace('-', "_"));
    }
    id
}

fn rewrite_refs(value: &mut Value, renames: &[(String, String)]) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("$ref")
                && let Some(name) = reference.strip_prefix("#/$defs/")
            {
                let name = renames
                    .iter()
                    .find(|(from, _)| from == name)
                    .map_or(name, |(_, to)| to.as_str());
                *reference = format!("#/components/schemas/{name}");
            }
            object.values_mut().for_each(|child| rewrite_refs(child, renames));
        }
        Value::Array(items) => items.iter_mut().for_each(|child| rewrite_refs(child, renames)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::versions;

    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(reference)) = object.get("$ref") {
                    found.push(reference.clone());
                }
                object.values().for_each(|child| refs(child, found));
            }
            Value::Array(items) => items.iter().for_each(|child| refs(child, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        for version in versions() {
            let document = document(&version);
            let mut found = Vec::new();
            refs(&document, &mut found);
            assert!(!found.is_empty());
            for reference in found {
                let pointer = reference.strip_prefix('#').expect("local refs only");
                assert!(
                    document.pointer(pointer).is_some(),
                    "{} {reference} does not resolve",
                    version.version
                );
            }
        }
    }

    #[test]
    fn request_side_shapes_get_their_own_name() {
        let v2 = versions().into_iter().find(|v| v.version == "v2").unwrap();
        let document = document(&v2);
        let schemas = &document["components"]["schemas"];
        let response_required = schemas["Subscription"]["required"].as_array().unwrap();
        assert!(response_required.contains(&"weekdays".into()));
        let request_required = schemas["SubscriptionInput"]["required"].as_array().unwrap();
        assert!(!request_required.contains(&"weekdays".into()));
    }
}
