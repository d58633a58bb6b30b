//! Installation routes. Input is validated here, field by field, then stored by the push service over gRPC
//! (`PUSH_GRPC_URL`); without a push service they answer `503 unavailable` after validation. A wrong secret
//! and an unknown installation get the same `404`, so installation ids cannot be probed.

use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use contracts::{
    Timestamp,
    proto::push::v1 as proto,
    v2::{
        ApnsEnvironment, Installation, InstallationCreated, InstallationRequest, Preferences,
        PreferencesRequest, SignalType, TargetKind, Weekday,
    },
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{AppState, error::ApiError, validate};

/// How long the api waits for the push service.
const PUSH_DEADLINE: Duration = Duration::from_secs(5);

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

pub(crate) fn installation_id(id: &str) -> Result<(), ApiError> {
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
        "notifications are not available: the push service is not connected".into(),
    )
}

fn push_client(
    state: &AppState,
) -> Result<proto::push_client::PushClient<server::grpc_auth::AuthChannel>, ApiError> {
    state.push.clone().ok_or_else(push_unavailable)
}

fn with_deadline<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(PUSH_DEADLINE);
    server::trace::propagate(&mut request);
    request
}

/// The push service's answer in the api's terms.
fn from_status(status: tonic::Status) -> ApiError {
    match status.code() {
        tonic::Code::InvalidArgument => {
            let message = status.message();
            let (field, detail) = message.split_once(": ").unwrap_or(("body", message));
            ApiError::bad_request(field, detail)
        }
        tonic::Code::NotFound => {
            ApiError::NotFound("no such installation, or the secret does not match".into())
        }
        tonic::Code::Unauthenticated => ApiError::Unauthorized,
        _ => {
            tracing::warn!(code = ?status.code(), message = status.message(), "push service call failed");
            ApiError::Unavailable("notifications are temporarily unavailable".into())
        }
    }
}

fn never_cached(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn proto_environment(environment: ApnsEnvironment) -> i32 {
    match environment {
        ApnsEnvironment::Production => proto::ApnsEnvironment::Production as i32,
        ApnsEnvironment::Sandbox => proto::ApnsEnvironment::Sandbox as i32,
    }
}

fn wire_time(value: Option<&prost_types::Timestamp>) -> Timestamp {
    value
        .and_then(|value| Timestamp::from_unix_seconds(value.seconds).ok())
        .unwrap_or_else(Timestamp::now)
}

fn upsert(
    id: Option<String>,
    secret: Option<String>,
    request: InstallationRequest,
) -> proto::UpsertInstallationRequest {
    proto::UpsertInstallationRequest {
        installation_id: id,
        secret,
        apns_token: request.apns_token,
        apns_environment: proto_environment(request.apns_environment),
        locale: request.locale,
        app_version: request.app_version,
    }
}

fn missing(what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("push answered without {what}"))
}

pub async fn register_installation(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: InstallationRequest = json_body(&headers, &body)?;
    validate::installation(&request)?;
    let answer = push_client(&state)?
        .upsert_installation(with_deadline(upsert(None, None, request)))
        .await
        .map_err(from_status)?
        .into_inner();
    let installation = answer.installation.ok_or_else(|| missing("an installation"))?;
    let created = InstallationCreated {
        created_at: wire_time(installation.created_at.as_ref()),
        installation_id: installation.installation_id,
        secret: answer.secret.ok_or_else(|| missing("a secret"))?,
    };
    Ok(never_cached(StatusCode::CREATED, &created))
}

pub async fn update_installation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    installation_id(&id)?;
    let secret = bearer_secret(&headers)?;
    let request: InstallationRequest = json_body(&headers, &body)?;
    validate::installation(&request)?;
    let answer = push_client(&state)?
        .upsert_installation(with_deadline(upsert(Some(id), Some(secret), request)))
        .await
        .map_err(from_status)?
        .into_inner();
    let installation = answer.installation.ok_or_else(|| missing("an installation"))?;
    let body = Installation {
        apns_environment: if installation.apns_environment == proto::ApnsEnvironment::Sandbox as i32
        {
            ApnsEnvironment::Sandbox
        } else {
            ApnsEnvironment::Production
        },
        updated_at: wire_time(installation.updated_at.as_ref()),
        installation_id: installation.installation_id,
        locale: installation.locale,
        app_version: installation.app_version,
        active: installation.active,
    };
    Ok(never_cached(StatusCode::OK, &body))
}

pub async fn update_preferences(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    installation_id(&id)?;
    let secret = bearer_secret(&headers)?;
    let request: PreferencesRequest = json_body(&headers, &body)?;
    let current = state.current().await?;
    validate::preferences(&request, &current.snapshot)?;
    let message = proto::UpdatePreferencesRequest {
        installation_id: id.clone(),
        secret,
        quiet_hours: request
            .quiet_hours
            .as_ref()
            .map(|quiet| proto::QuietHours { start: quiet.start.clone(), end: quiet.end.clone() }),
        subscriptions: request
            .subscriptions
            .iter()
            .map(|subscription| proto::Subscription {
                target_kind: match subscription.target_kind {
                    TargetKind::Park => proto::TargetKind::Park as i32,
                    TargetKind::Lot => proto::TargetKind::Lot as i32,
                },
                target_id: subscription.target_id.clone(),
                signal: proto_signal(subscription.signal) as i32,
                threshold: subscription.threshold,
                weekdays: subscription
                    .weekdays
                    .iter()
                    .map(|day| proto_weekday(*day) as i32)
                    .collect(),
                enabled: subscription.enabled,
            })
            .collect(),
    };
    let answer = push_client(&state)?
        .update_preferences(with_deadline(message))
        .await
        .map_err(from_status)?
        .into_inner();
    let body = Preferences {
        installation_id: id,
        time_zone: "Asia/Seoul".into(),
        quiet_hours: request.quiet_hours,
        subscriptions: request.subscriptions,
        updated_at: wire_time(answer.updated_at.as_ref()),
    };
    Ok(never_cached(StatusCode::OK, &body))
}

fn proto_signal(signal: SignalType) -> proto::SignalType {
    match signal {
        SignalType::LotAvailableBelow => proto::SignalType::LotAvailableBelow,
        SignalType::LotAvailableAbove => proto::SignalType::LotAvailableAbove,
        SignalType::LotFull => proto::SignalType::LotFull,
        SignalType::CongestionEased => proto::SignalType::CongestionEased,
        SignalType::CongestionRose => proto::SignalType::CongestionRose,
        SignalType::EventCancelled => proto::SignalType::EventCancelled,
        SignalType::EventReinstated => proto::SignalType::EventReinstated,
        SignalType::ParkClosed => proto::SignalType::ParkClosed,
        // Rejected by validation before this point.
        SignalType::Unknown => proto::SignalType::Unspecified,
    }
}

fn proto_weekday(day: Weekday) -> proto::Weekday {
    match day {
        Weekday::Mon => proto::Weekday::Mon,
        Weekday::Tue => proto::Weekday::Tue,
        Weekday::Wed => proto::Weekday::Wed,
        Weekday::Thu => proto::Weekday::Thu,
        Weekday::Fri => proto::Weekday::Fri,
        Weekday::Sat => proto::Weekday::Sat,
        Weekday::Sun => proto::Weekday::Sun,
    }
}

pub async fn delete_installation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    installation_id(&id)?;
    let secret = bearer_secret(&headers)?;
    push_client(&state)?
        .delete_installation(with_deadline(proto::DeleteInstallationRequest {
            installation_id: id,
            secret,
        }))
        .await
        .map_err(from_status)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
