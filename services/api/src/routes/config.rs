//! `GET /v2/config`: the features file's answer for the calling build (from `X-App-Version` or the
//! `User-Agent`) and, for percentage rules, the installation named by `installation_id`.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use contracts::{Timestamp, v2::AppConfig};
use features::Client;

use crate::{
    AppState, app_version::Caller, error::ApiError, request::QueryParams, respond::Rendered,
    routes::installations::installation_id,
};

/// How long the app may act on an answer before asking again. Switches change with the file, not with time;
/// this bounds how long a changed switch takes to reach an app that is open (plus the reload interval).
const VALID_FOR_SECONDS: i64 = 15 * 60;

pub async fn get_config(
    State(state): State<AppState>,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let installation = query.get("installation_id");
    if let Some(id) = installation {
        installation_id(id)?;
    }
    let caller = Caller::identify(&headers);
    let (build, version) = match &caller {
        Caller::App(app) => (Some(&app.build), app.version.as_ref()),
        Caller::Invalid | Caller::Unknown => (None, None),
    };
    let features = state.features.current();
    let decision = features.decide(Client { build, version, installation_id: installation });
    let now = state.now();
    let body = AppConfig {
        generated_at: now,
        valid_until: Timestamp::from_unix_seconds(now.as_unix_seconds() + VALID_FOR_SECONDS)
            .expect("in range"),
        minimum_supported_build: decision.minimum_supported_build.map(ToString::to_string),
        recommended_build: decision.recommended_build.map(ToString::to_string),
        switches: decision
            .switches
            .into_iter()
            .map(|(name, on)| (name.as_str().to_owned(), on))
            .collect(),
    };
    // Never reused by shared caches without revalidation: the body is per build and per installation.
    let mut response = Rendered::new(&body, None).respond(&headers, now);
    // By the build's headers and the coding, not the language (nothing in the body is text).
    response.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("accept-encoding, x-app-version, user-agent"),
    );
    Ok(response)
}
