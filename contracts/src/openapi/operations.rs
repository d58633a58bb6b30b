//! What the catalogue does not say about a route but a client generator and a reader need: a summary and a
//! tag per operation, who may call it, typed query parameters, the conditional `GET` and the error statuses.
//!
//! The table below covers every catalogued endpoint (a test checks it), so a new route without a summary or
//! an access rule fails `cargo test` instead of publishing an undocumented operation.

use serde_json::{Map, Value, json};

use crate::catalogue::{Endpoint, Param};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the operation says `security: []`.
    Public,
    /// The installation's own secret as `Authorization: Bearer <secret>` (`POST /v2/installations` returns
    /// it); the api answers a missing one with `401` and a wrong one like an unknown installation, `404`.
    InstallationSecret,
}

/// One route's documentation.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub access: Access,
}

/// The name of the bearer scheme in `components.securitySchemes`.
pub const SECRET_SCHEME: &str = "installationSecret";

/// Every tag with its description, in the order readers see them.
pub const TAGS: [(&str, &str); 7] = [
    ("home", "The first screen: every park at a glance."),
    ("parks", "Parks, their lots, facilities, events and notices."),
    ("forecasts", "Parking and congestion forecasts with their confidence."),
    ("widgets", "Small bodies for the home-screen widgets."),
    ("installations", "Push registrations and their alert preferences."),
    ("status", "The health of every upstream source."),
    (
        "config",
        "What the server decides for the calling app build: supported builds and feature switches.",
    ),
];

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    access: Access,
) -> Route {
    Route { method, path, summary, tag, access }
}

/// Every route of every served version.
pub const ROUTES: [Route; 14] = [
    route(
        "GET",
        "/v1/home-summary",
        "Every park at a glance (frozen v1 shape)",
        "home",
        Access::Public,
    ),
    route("GET", "/v2/home-summary", "Every park at a glance", "home", Access::Public),
    route("GET", "/v2/parks", "The parks and their reference data", "parks", Access::Public),
    route("GET", "/v2/parks/{park_id}", "One park in detail", "parks", Access::Public),
    route(
        "GET",
        "/v2/lots/{lot_id}/forecast",
        "A lot's parking forecast",
        "forecasts",
        Access::Public,
    ),
    route(
        "GET",
        "/v2/parks/{park_id}/forecast",
        "A park's congestion forecast",
        "forecasts",
        Access::Public,
    ),
    route(
        "GET",
        "/v2/widgets/parking",
        "Chosen lots for the parking widget",
        "widgets",
        Access::Public,
    ),
    route(
        "GET",
        "/v2/widgets/park/{park_id}",
        "One park for the park widget",
        "widgets",
        Access::Public,
    ),
    route(
        "POST",
        "/v2/installations",
        "Register an installation for push",
        "installations",
        Access::Public,
    ),
    route(
        "PUT",
        "/v2/installations/{installation_id}",
        "Update an installation's registration",
        "installations",
        Access::InstallationSecret,
    ),
    route(
        "PUT",
        "/v2/installations/{installation_id}/preferences",
        "Replace an installation's alert preferences",
        "installations",
        Access::InstallationSecret,
    ),
    route(
        "DELETE",
        "/v2/installations/{installation_id}",
        "Delete an installation and its preferences",
        "installations",
        Access::InstallationSecret,
    ),
    route("GET", "/v2/status", "The health of every source", "status", Access::Public),
    route(
        "GET",
        "/v2/config",
        "Supported builds and feature switches for the calling build",
        "config",
        Access::Public,
    ),
];

/// The documentation of `endpoint`.
///
/// # Panics
///
/// When the route is missing from [`ROUTES`] (the `every_catalogued_endpoint_is_documented` test).
pub fn documented(endpoint: &Endpoint) -> &'static Route {
    ROUTES
        .iter()
        .find(|route| route.method == endpoint.method && route.path == endpoint.path)
        .unwrap_or_else(|| {
            panic!(
                "{} {} has no entry in ROUTES (contracts/src/openapi/operations.rs): give it a summary, a tag \
                 and who may call it",
                endpoint.method, endpoint.path
            )
        })
}

/// A query parameter with its real type: `lang` is the `Lang` enum, `lot_ids` a comma-separated list.
pub fn query_parameter(param: &Param) -> Value {
    let mut parameter = json!({"name": param.name, "in": "query", "required": param.required});
    match param.name {
        "lang" => {
            parameter["description"] = json!(
                "The response language; without it, the first supported `Accept-Language` entry, else Korean."
            );
            parameter["schema"] = json!({"$ref": "#/components/schemas/Lang"});
        }
        "lot_ids" => {
            parameter["description"] = json!("The lots to show, comma-separated (`lot_ids=a,b`).");
            parameter["style"] = json!("form");
            parameter["explode"] = json!(false);
            parameter["schema"] =
                json!({"type": "array", "items": {"type": "string"}, "minItems": 1});
        }
        "installation_id" => {
            parameter["description"] = json!(
                "The installation asking (the id `POST /v2/installations` returned), for switches rolled out to a \
                 share of installations; without it those rules do not apply. The build comes from \
                 `X-App-Version` or the `User-Agent`."
            );
            parameter["schema"] = json!({"type": "string", "maxLength": 64});
        }
        _ => parameter["schema"] = json!({"type": "string"}),
    }
    parameter
}

/// Adds what a `GET` answers beyond its body: every read carries a strong `ETag`, and a request whose
/// `If-None-Match` still matches gets `304 Not Modified` without a body.
pub fn conditional_get(operation: &mut Map<String, Value>) {
    let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
    parameters.as_array_mut().expect("parameters are an array").push(json!({
        "name": "If-None-Match",
        "in": "header",
        "required": false,
        "description": "The `ETag` of the body the client holds; a match is answered with `304`.",
        "schema": {"type": "string"},
    }));
    let responses = operation["responses"].as_object_mut().expect("responses are an object");
    let etag = json!({
        "description": "A strong validator of this representation (it differs per content coding).",
        "schema": {"type": "string"},
    });
    if let Some(success) = responses.get_mut("200").and_then(Value::as_object_mut) {
        success.insert("headers".to_owned(), json!({"ETag": etag.clone()}));
    }
    responses.insert(
        "304".to_owned(),
        json!({
            "description": "not modified: the client's copy (`If-None-Match`) is current",
            "headers": {"ETag": etag},
        }),
    );
}

/// The optional header by which the app says which build is calling (counted per API version, and the
/// build `GET /v2/config` answers for); a missing or malformed value is never refused.
pub fn app_version_header(operation: &mut Map<String, Value>) {
    let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
    parameters.as_array_mut().expect("parameters are an array").push(json!({
        "name": "X-App-Version",
        "in": "header",
        "required": false,
        "description": "The calling app's marketing version and build, `2.4.0 (431)` (else the build is read from \
                        the `User-Agent` iOS writes). Never refused: a value that does not parse counts as `invalid`.",
        "schema": {"type": "string", "example": "2.4.0 (431)"},
    }));
}

/// The refusals: `4XX` with the error envelope where the version publishes it (v2), without a body schema
/// otherwise (v1 serves the envelope too, but never documented it).
pub fn client_errors(operation: &mut Map<String, Value>, envelope: Option<&Value>) {
    let responses = operation["responses"].as_object_mut().expect("responses are an object");
    let refused = match envelope {
        Some(envelope) => json!({
            "description": "refused: `error.code` says why and `error.field` names the parameter at fault",
            "content": {"application/json": {"schema": envelope.clone()}},
        }),
        None => json!({"description": "refused"}),
    };
    responses.insert("4XX".to_owned(), refused);
}

/// The operation's security requirement.
pub fn security(access: Access) -> Value {
    match access {
        Access::Public => json!([]),
        Access::InstallationSecret => json!([{SECRET_SCHEME: []}]),
    }
}

/// The bearer scheme of [`Access::InstallationSecret`], for `components.securitySchemes`.
pub fn secret_scheme() -> Value {
    json!({
        "type": "http",
        "scheme": "bearer",
        "description": "The installation's secret, as `POST /v2/installations` returned it once.",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::versions;

    #[test]
    fn every_catalogued_endpoint_is_documented_once() {
        let endpoints: Vec<Endpoint> =
            versions().into_iter().flat_map(|version| version.endpoints).collect();
        for endpoint in &endpoints {
            let route = documented(endpoint);
            assert!(TAGS.iter().any(|(tag, _)| *tag == route.tag), "{} has no tag", route.path);
        }
        assert_eq!(endpoints.len(), ROUTES.len(), "ROUTES lists a route no version serves");
    }

    #[test]
    fn every_operation_documents_the_optional_app_version_header() {
        for version in crate::catalogue::versions() {
            let document = crate::openapi::document(&version);
            for (path, item) in document["paths"].as_object().unwrap() {
                for (method, operation) in item.as_object().unwrap() {
                    let header = operation["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|p| p["name"] == "X-App-Version" && p["in"] == "header");
                    let header =
                        header.unwrap_or_else(|| panic!("{method} {path} lacks X-App-Version"));
                    assert_eq!(header["required"], false, "{method} {path}");
                }
            }
        }
    }

    #[test]
    fn the_installation_routes_that_take_the_secret_say_so() {
        let secured: Vec<_> = ROUTES
            .iter()
            .filter(|route| route.access == Access::InstallationSecret)
            .map(|route| format!("{} {}", route.method, route.path))
            .collect();
        assert_eq!(
            secured,
            [
                "PUT /v2/installations/{installation_id}",
                "PUT /v2/installations/{installation_id}/preferences",
                "DELETE /v2/installations/{installation_id}",
            ]
        );
    }
}
