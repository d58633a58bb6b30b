//! OpenAPI 3.1 documents, generated from the [`catalogue`](crate::catalogue) and the DTOs' JSON Schemas.
//!
//! OpenAPI 3.1 uses JSON Schema 2020-12, so the schemars output is the starting point: each DTO's `$defs`
//! become `components/schemas`, and `$ref`s are rewritten to point there. A request type whose name clashes
//! with a differently shaped response type (the same Rust type seen with the deserialize contract, where
//! defaulted fields are optional) is published as `<Name>Input`. Success statuses follow the routes'
//! semantics: `201` for `POST`, `204` for `DELETE`, `200` otherwise; every v2 route also documents the error
//! envelope.
//!
//! The schemas are then shaped for client generators (swift-openapi-generator first): [`enums`] (plain `enum`
//! arrays with their kind and per-value descriptions), [`nullable`] (nullable references a generator reads as
//! Optionals) and [`operations`] (summaries, tags, security, typed parameters, `304`, `4XX`). Only these
//! documents are shaped: the JSON Schema documents (`contracts/schemas/`) and the released baselines the
//! compatibility checker compares keep the schemars form.

use serde_json::{Map, Value, json};

use crate::catalogue::{ContractVersion, Direction, schema_for};

pub mod enums;
pub mod nullable;
pub mod operations;

/// Where the api is served; paths carry their version, so the servers are the hosts' roots.
const SERVERS: [(&str, &str); 2] = [
    ("https://api.hangangjari.app", "production"),
    // The staging overlay's Ingress host (kustomize/overlays/staging/ingress.yaml).
    ("https://api.staging.hangangjari.app", "staging"),
];

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

    // `lang` parameters refer to `Lang`; v1 has no DTO that names it, so it is added from the same type v2
    // publishes (both versions parse the parameter alike).
    if version
        .endpoints
        .iter()
        .any(|endpoint| endpoint.query.iter().any(|param| param.name == "lang"))
        && !components.contains_key("Lang")
    {
        let mut lang = schema_for::<crate::v2::Lang>(Direction::Response);
        if let Some(object) = lang.as_object_mut() {
            object.remove("$schema");
            object.remove("title");
        }
        components.insert("Lang".to_owned(), lang);
    }
    enums::flatten(&mut components);
    let targets = components.clone();
    for schema in components.values_mut() {
        nullable::rewrite(schema, &targets);
    }

    let mut paths = Map::new();
    let mut tags_used = std::collections::BTreeSet::new();
    let mut secured = false;
    for endpoint in &version.endpoints {
        let mut parameters: Vec<Value> = endpoint
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(endpoint.query.iter().map(operations::query_parameter));
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
        let route = operations::documented(endpoint);
        let mut operation = json!({
            "operationId": operation_id(endpoint.method, endpoint.path),
            "summary": route.summary,
            "tags": [route.tag],
            "security": operations::security(route.access),
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(name) = endpoint.request {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": dto_refs[name].clone()}}});
        }
        let object = operation.as_object_mut().expect("operations are objects");
        if endpoint.method == "GET" {
            operations::conditional_get(object);
        }
        operations::app_version_header(object);
        operations::client_errors(object, dto_refs.get("ErrorEnvelope"));
        tags_used.insert(route.tag);
        secured |= route.access != operations::Access::Public;
        paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("path items are objects")
            .insert(method, operation);
    }

    let servers: Vec<Value> = SERVERS
        .iter()
        .map(|(url, description)| json!({"url": url, "description": description}))
        .collect();
    let tags: Vec<Value> = operations::TAGS
        .iter()
        .filter(|(name, _)| tags_used.contains(name))
        .map(|(name, description)| json!({"name": name, "description": description}))
        .collect();
    let mut components = json!({"schemas": components});
    if secured {
        components["securitySchemes"] =
            json!({operations::SECRET_SCHEME: operations::secret_scheme()});
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Hangangjari API",
            "version": version.version,
            "description": format!("The {} app-facing API. Generated from the contracts crate.", version.version),
        },
        "servers": servers,
        "tags": tags,
        "paths": paths,
        "components": components,
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

    #[test]
    fn every_reference_resolves() {
        for version in versions() {
            let document = document(&version);
            let found: Vec<&str> = objects(&document)
                .into_iter()
                .filter_map(|object| object.get("$ref")?.as_str())
                .collect();
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

    /// The kind schemars gave each enum (from every DTO's own schema, `$defs` included), by name.
    fn declared_kinds(version: &ContractVersion) -> std::collections::BTreeMap<String, String> {
        let mut kinds = std::collections::BTreeMap::new();
        for dto in &version.dtos {
            let schema = dto.schema();
            let defs = schema.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
            let named = defs.into_iter().chain([(dto.name.to_owned(), schema.clone())]);
            for (name, schema) in named {
                if let Some(kind) =
                    schema.get(crate::enums::ENUM_KIND_KEYWORD).and_then(Value::as_str)
                {
                    kinds.insert(name, kind.to_owned());
                }
            }
        }
        kinds
    }

    /// Every object anywhere in `value`, `value` itself included.
    fn objects(value: &Value) -> Vec<&Map<String, Value>> {
        fn visit<'a>(value: &'a Value, found: &mut Vec<&'a Map<String, Value>>) {
            match value {
                Value::Object(object) => {
                    found.push(object);
                    object.values().for_each(|child| visit(child, found));
                }
                Value::Array(items) => items.iter().for_each(|child| visit(child, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        visit(value, &mut found);
        found
    }

    #[test]
    fn every_open_enum_in_the_document_is_marked_so() {
        let mut open = 0;
        for version in versions() {
            let document = document(&version);
            let schemas = document["components"]["schemas"].as_object().unwrap();
            for (name, kind) in declared_kinds(&version) {
                let published = schemas.get(&name).or_else(|| schemas.get(&format!("{name}Input")));
                let schema = published.unwrap_or_else(|| panic!("{name} is not published"));
                let context = format!("{} {name}", version.version);
                assert_eq!(schema[crate::enums::ENUM_KIND_KEYWORD], kind.as_str(), "{context}");
                assert_eq!(schema["type"], "string", "{context}");
                let values =
                    schema["enum"].as_array().unwrap_or_else(|| panic!("{context}: no enum"));
                if let Some(descriptions) = schema.get(enums::DESCRIPTIONS_KEYWORD) {
                    assert_eq!(descriptions.as_array().unwrap().len(), values.len(), "{context}");
                }
                if kind == crate::enums::EnumKind::Open.as_str() {
                    open += 1;
                    assert_eq!(values.last().unwrap(), enums::UNKNOWN_VALUE, "{context}");
                    let description = schema["description"].as_str().unwrap_or_default();
                    assert!(description.ends_with(enums::OPEN_NOTE), "{context}: {description}");
                }
            }
            // And nothing else in the document is an enum without a kind.
            for object in objects(&document).iter().filter(|object| object.contains_key("enum")) {
                assert!(
                    object.contains_key(crate::enums::ENUM_KIND_KEYWORD),
                    "{}: an enum without a kind: {object:?}",
                    version.version
                );
            }
        }
        assert!(open >= 10, "only {open} open enums were checked");
    }

    #[test]
    fn no_union_a_swift_generator_skips_or_numbers_is_left() {
        for version in versions() {
            let document = document(&version);
            for object in objects(&document) {
                for keyword in ["anyOf", "oneOf"] {
                    let Some(Value::Array(branches)) = object.get(keyword) else { continue };
                    assert!(
                        !branches.iter().any(|branch| branch == &json!({"type": "null"})
                            || branch.get("const").is_some()),
                        "{}: {object:?}",
                        version.version
                    );
                }
            }
        }
    }

    #[test]
    fn operations_say_who_may_call_them_and_how_reads_are_revalidated() {
        let v2 = versions().into_iter().find(|v| v.version == "v2").unwrap();
        let document = document(&v2);
        let paths = &document["paths"];
        let delete = &paths["/v2/installations/{installation_id}"]["delete"];
        assert_eq!(delete["security"], json!([{operations::SECRET_SCHEME: []}]));
        assert_eq!(
            document["components"]["securitySchemes"][operations::SECRET_SCHEME]["scheme"],
            "bearer"
        );
        assert_eq!(paths["/v2/installations"]["post"]["security"], json!([]));
        let widget = &paths["/v2/widgets/parking"]["get"];
        assert!(widget["responses"]["304"].is_object());
        let parameters = widget["parameters"].as_array().unwrap();
        let lot_ids = parameters.iter().find(|p| p["name"] == "lot_ids").unwrap();
        assert_eq!((&lot_ids["style"], &lot_ids["explode"]), (&json!("form"), &json!(false)));
        assert_eq!(lot_ids["schema"]["type"], "array");
        let lang = parameters.iter().find(|p| p["name"] == "lang").unwrap();
        assert_eq!(lang["schema"], json!({"$ref": "#/components/schemas/Lang"}));
        assert!(paths["/v2/installations"]["post"]["responses"].get("304").is_none());
        let servers: Vec<&str> = document["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["url"].as_str().unwrap())
            .collect();
        assert_eq!(servers, ["https://api.hangangjari.app", "https://api.staging.hangangjari.app"]);
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
