//! Installation routes. Input is validated here, field by field; storing installations and preferences is the
//! push service's job, and until the api is wired to it these routes answer `503 unavailable` after
//! validation, so an app can already be tested against the contract's rules.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, header},
    response::Response,
};
use contracts::v2::{InstallationRequest, PreferencesRequest};
use serde::de::DeserializeOwned;

use crate::{AppState, error::ApiError, validate};

/// Parses a JSON body; a malformed one is a 400 naming the field at fault.
fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(ApiError::bad_request("content-type", "expected application/json"));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name);
        let field = match (path.as_str(), missing) {
            (".", Some(name)) => name.to_owned(),
            (_, Some(name)) => format!("{path}.{name}"),
            (".", None) => "body".to_owned(),
            (_, None) => path,
        };
        ApiError::bad_request(field, message)
    })
}

/// The installation secret from `Authorization: Bearer <secret>`.
fn bearer_secret(headers: &HeaderMap) -> Result<String, ApiError> {
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| !secret.is_empty() && secret.len() <= 200);
    secret.map(str::to_owned).ok_or(ApiError::Unauthorized)
}

fn installation_id(id: &str) -> Result<(), ApiError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request("installation_id", "not an installation id"))
    }
}

fn push_unavailable() -> ApiError {
    ApiError::Unavailable(
        "notifications are not available yet: the push service is not connected".into(),
    )
}

pub async fn register_installation(headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let request: InstallationRequest = json_body(&headers, &body)?;
    validate::installation(&request)?;
    Err(push_unavailable())
}

pub async fn update_installation(
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    installation_id(&id)?;
    let _secret = bearer_secret(&headers)?;
    let request: InstallationRequest = json_body(&headers, &body)?;
    validate::installation(&request)?;
    Err(push_unavailable())
}

pub async fn update_preferences(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    installation_id(&id)?;
    let _secret = bearer_secret(&headers)?;
    let request: PreferencesRequest = json_body(&headers, &body)?;
    let current = state.current().await?;
    validate::preferences(&request, &current.snapshot)?;
    Err(push_unavailable())
}

pub async fn delete_installation(
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    installation_id(&id)?;
    let _secret = bearer_secret(&headers)?;
    Err(push_unavailable())
}
