//! The read routes: home summary (v1 and v2), parks, park detail, forecasts, widgets and status. Each renders
//! from the current snapshot with freshness assessed now; every body about the whole snapshot or one park or
//! lot is kept pre-serialized (and compressed) until it would change. The parking widget, whose lot list is
//! the client's choice, and the status are rendered per request.

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};
use contracts::v2::Lang;
use readmodel::render;

use crate::{
    AppState, BodyKey,
    error::ApiError,
    request::{QueryParams, negotiate_lang},
    respond::Rendered,
};

/// Most lots a parking widget may ask for.
const MAX_WIDGET_LOTS: usize = 12;

pub async fn get_home_summary(
    State(state): State<AppState>,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = negotiate_lang(&query, &headers)?;
    let current = state.current().await?;
    let now = state.now();
    let rendered =
        state.cached_body(BodyKey::route("/v2/home-summary", lang), &current, now, |reuse| {
            Ok::<_, ApiError>(Rendered::new(
                &render::home_summary(&current.snapshot, lang, now, current.served_from),
                reuse,
            ))
        })?;
    Ok(rendered.respond(&headers, now))
}

pub async fn get_home_summary_v1(
    State(state): State<AppState>,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = negotiate_lang(&query, &headers)?;
    let current = state.current().await?;
    let now = state.now();
    let rendered =
        state.cached_body(BodyKey::route("/v1/home-summary", lang), &current, now, |reuse| {
            Ok::<_, ApiError>(Rendered::new(
                &render::home_summary_v1(&current.snapshot, lang, now),
                reuse,
            ))
        })?;
    Ok(rendered.respond(&headers, now))
}

pub async fn get_parks(
    State(state): State<AppState>,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = negotiate_lang(&query, &headers)?;
    let current = state.current().await?;
    let now = state.now();
    let rendered =
        state.cached_body(BodyKey::route("/v2/parks", lang), &current, now, |reuse| {
            Ok::<_, ApiError>(Rendered::new(
                &render::park_list(&current.snapshot, lang, current.served_from),
                reuse,
            ))
        })?;
    Ok(rendered.respond(&headers, now))
}

pub async fn get_park(
    State(state): State<AppState>,
    Path(park_id): Path<String>,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = negotiate_lang(&query, &headers)?;
    let current = state.current().await?;
    let now = state.now();
    let key = BodyKey::about("/v2/parks/{park_id}", lang, &park_id);
    let rendered = state.cached_body(key, &current, now, |reuse| {
        render::park_detail(&current.snapshot, &park_id, lang, now, current.served_from)
            .map(|body| Rendered::new(&body, reuse))
            .ok_or_else(|| ApiError::NotFound(format!("no park `{park_id}`")))
    })?;
    Ok(rendered.respond(&headers, now))
}

pub async fn get_park_forecast(
    State(state): State<AppState>,
    Path(park_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let current = state.current().await?;
    let now = state.now();
    // Forecast bodies are not localized: one per park.
    let key = BodyKey::about("/v2/parks/{park_id}/forecast", Lang::Ko, &park_id);
    let rendered = state.cached_body(key, &current, now, |reuse| {
        render::park_forecast(&current.snapshot, &park_id, now, current.served_from)
            .map(|body| Rendered::new(&body, reuse))
            .ok_or_else(|| ApiError::NotFound(format!("no park `{park_id}`")))
    })?;
    Ok(rendered.respond(&headers, now))
}

pub async fn get_lot_forecast(
    State(state): State<AppState>,
    Path(lot_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let current = state.current().await?;
    let now = state.now();
    let key = BodyKey::about("/v2/lots/{lot_id}/forecast", Lang::Ko, &lot_id);
    let rendered = state.cached_body(key, &current, now, |reuse| {
        render::lot_forecast(&current.snapshot, &lot_id, now, current.served_from)
            .map(|body| Rendered::new(&body, reuse))
            .ok_or_else(|| ApiError::NotFound(format!("no lot `{lot_id}`")))
    })?;
    Ok(rendered.respond(&headers, now))
}

fn widget_lot_ids(query: &QueryParams) -> Result<Vec<String>, ApiError> {
    let raw = query
        .get("lot_ids")
        .ok_or_else(|| ApiError::bad_request("lot_ids", "required: comma-separated lot ids"))?;
    let ids: Vec<String> =
        raw.split(',').map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned).collect();
    if ids.is_empty() {
        return Err(ApiError::bad_request("lot_ids", "names no lot"));
    }
    if ids.len() > MAX_WIDGET_LOTS {
        return Err(ApiError::bad_request("lot_ids", format!("at most {MAX_WIDGET_LOTS} lots")));
    }
    Ok(ids)
}

pub async fn get_parking_widget(
    State(state): State<AppState>,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang: Lang = negotiate_lang(&query, &headers)?;
    let lot_ids = widget_lot_ids(&query)?;
    let current = state.current().await?;
    let now = state.now();
    let body = render::parking_widget(&current.snapshot, &lot_ids, lang, now, current.served_from)
        .map_err(|unknown| ApiError::NotFound(unknown.to_string()))?;
    Ok(Rendered::new(&body, state.reusable_until(&current, now)).respond(&headers, now))
}

pub async fn get_park_widget(
    State(state): State<AppState>,
    Path(park_id): Path<String>,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = negotiate_lang(&query, &headers)?;
    let current = state.current().await?;
    let now = state.now();
    let key = BodyKey::about("/v2/widgets/park/{park_id}", lang, &park_id);
    let rendered = state.cached_body(key, &current, now, |reuse| {
        render::park_widget(&current.snapshot, &park_id, lang, now, current.served_from)
            .map(|body| Rendered::new(&body, reuse))
            .ok_or_else(|| ApiError::NotFound(format!("no park `{park_id}`")))
    })?;
    Ok(rendered.respond(&headers, now))
}

pub async fn get_status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let current = state.current().await?;
    let now = state.now();
    let body = render::status(&current.snapshot, &state.identity.release_id, now);
    // Status is for operators and smoke checks: never reused.
    Ok(Rendered::new(&body, None).respond(&headers, now))
}
