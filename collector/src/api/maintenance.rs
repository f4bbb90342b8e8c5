//! The maintenance endpoints of SPEC §11: declare a window (`POST`), list and read them
//! (`GET`), give one a new end (`PATCH`), cancel one (`DELETE`). Writes need an `operator`
//! or `manager` token whose scope covers every service the window names
//! ([`require_maintenance_writer`]); reads are the read API's, filtered to a scoped
//! token's services. Every change is a record (`crate::maintenance`), kept in the window's
//! `history`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use probity_config::Role;
use probity_config::time::parse_instant;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::auth::{self, Principal};
use super::openapi::{ReadErrors, WriteErrors};
use super::read::{blocking, only};
use crate::maintenance::{self, MaintenanceError, NewWindow, Window};
use crate::state::AppState;
use crate::views::{MaintenanceListView, MaintenanceRecordView};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, declare)).routes(routes!(one, set_end, cancel))
}

type Params = Query<HashMap<String, String>>;

impl From<MaintenanceError> for ApiError {
    fn from(e: MaintenanceError) -> Self {
        match e {
            MaintenanceError::Invalid(m) => ApiError::BadRequest(m),
            MaintenanceError::Exists(_) | MaintenanceError::Refused(_) => ApiError::Conflict(e.to_string()),
            MaintenanceError::Reserved => ApiError::Forbidden(e.to_string()),
            MaintenanceError::NotFound(_) => ApiError::NotFound(e.to_string()),
            MaintenanceError::Store(_) | MaintenanceError::History(_) | MaintenanceError::Decode { .. } => {
                ApiError::internal(e)
            }
        }
    }
}

/// The write check of SPEC §11/§12 for maintenance, in one place: an `operator` or
/// `manager` token whose scope covers every service in `services` (else 403).
pub(super) fn require_maintenance_writer(
    state: &AppState,
    headers: &HeaderMap,
    services: &[String],
) -> Result<Principal, ApiError> {
    let caller = auth::require(state, headers, Role::Operator)?;
    caller.require_services(services)?;
    Ok(caller)
}

/// A reader sees the windows on its scope's services (all of them when unscoped).
fn visible(caller: &Principal, window: &Window) -> bool {
    window.services.iter().any(|s| caller.sees_service(s))
}

fn by(caller: &Principal) -> String {
    // Every write token has an id ([[api.tokens]]); the fallback names the role.
    caller.id.clone().unwrap_or_else(|| caller.role.as_str().to_string())
}

/// A window to declare (SPEC §11).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeclareBody {
    /// `[a-z0-9][a-z0-9_-]{0,62}`; left out, one is made (`mw-` and 12 hex digits).
    id: Option<String>,
    /// The services the window covers (each known, each in the token's scope).
    services: Vec<String>,
    /// RFC 3339 with an offset.
    start: String,
    /// RFC 3339 with an offset, after `start`, at most 366 days later.
    end: String,
    /// What the maintenance is for (not blank).
    reason: String,
    /// The change ticket, if there is one.
    ticket: Option<String>,
}

/// A window's new end.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EndBody {
    /// RFC 3339: earlier ends the window early, later extends it (only before it ends).
    end: String,
}

/// The filters of `GET /api/v1/maintenance`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListParams {
    /// Only the windows covering this service.
    service: Option<String>,
    /// Only the windows ending after this instant (RFC 3339).
    from: Option<String>,
    /// Only the windows starting before this instant (RFC 3339).
    to: Option<String>,
    /// `true`: cancelled windows too (default `false`).
    include_cancelled: Option<bool>,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body must be {shape}: {e}")))
}

const DECLARE_SHAPE: &str = "{\"services\": [\"…\"], \"start\": \"2026-11-10T22:00:00Z\", \"end\": \"…\", \"reason\": \"…\", \"ticket\"?: \"…\", \"id\"?: \"…\"}";

/// Declares a maintenance window: `declared_by` is the token's id, `declared_at` now,
/// `retroactive` when it began before. Needs an `operator` or `manager` token scoped to
/// every service named.
#[utoipa::path(
    post,
    path = "/api/v1/maintenance",
    tag = "maintenance",
    security(("api_token" = [])),
    request_body(content = DeclareBody, content_type = "application/json"),
    responses((status = 201, description = "the window as stored, with its history", body = MaintenanceRecordView), WriteErrors)
)]
async fn declare(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // Who first (401/403 by role), then what (400), then whether the scope covers it (403).
    auth::require(&state, &headers, Role::Operator)?;
    let body: DeclareBody = json_body(&body, DECLARE_SHAPE)?;
    let caller = require_maintenance_writer(&state, &headers, &body.services)?;
    let by = by(&caller);
    let now = super::now_ms();
    let new = NewWindow {
        id: body.id,
        services: body.services,
        start: body.start,
        end: body.end,
        reason: body.reason,
        ticket: body.ticket,
    };
    let st = state.clone();
    let window = blocking(move || {
        let config = st.config();
        Ok(maintenance::declare(st.store(), &config.catalogue, &new, &by, now)?)
    })
    .await?;
    tracing::info!(window = %window.id, by = %window.declared_by, retroactive = window.retroactive(), "maintenance window declared");
    let location = format!("/api/v1/maintenance/{}", window.id);
    let out = serde_json::to_value(MaintenanceRecordView::from(&window)).map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(out)).into_response())
}

/// The maintenance windows overlapping `[from, to)` (each bound optional), by start; a
/// scoped token sees the windows on its services.
#[utoipa::path(
    get,
    path = "/api/v1/maintenance",
    tag = "maintenance",
    security((), ("api_token" = [])),
    params(ListParams),
    responses((status = 200, body = MaintenanceListView), ReadErrors)
)]
async fn list(State(state): State<AppState>, headers: HeaderMap, Query(params): Params) -> Result<Response, ApiError> {
    let caller = auth::require(&state, &headers, Role::Reader)?;
    only(&params, &["service", "from", "to", "include_cancelled"])?;
    let service = params.get("service").cloned();
    if let Some(s) = &service {
        caller.service_or_404(s)?;
        if state.config().catalogue.service(s).is_none() {
            return Err(super::unknown_service(s));
        }
    }
    let instant = |key: &str| -> Result<Option<i64>, ApiError> {
        params
            .get(key)
            .map(|t| {
                parse_instant(t).map(|t| t.as_millisecond()).map_err(|e| ApiError::BadRequest(format!("{key}: {e}")))
            })
            .transpose()
    };
    let (from, to) = (instant("from")?, instant("to")?);
    if let (Some(f), Some(t)) = (from, to)
        && t <= f
    {
        return Err(ApiError::BadRequest("to is not after from; give from < to".into()));
    }
    let include_cancelled = match params.get("include_cancelled").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!("include_cancelled: \"{other}\" is not true or false")));
        }
    };
    let mut windows = blocking(move || Ok(maintenance::list(state.store())?)).await?;
    windows.retain(|w| {
        visible(&caller, w)
            && service.as_deref().is_none_or(|s| w.covers(s))
            && from.is_none_or(|f| w.end_ms > f)
            && to.is_none_or(|t| w.start_ms < t)
            && (include_cancelled || w.cancelled.is_none())
    });
    windows.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
    let views = MaintenanceListView { windows: windows.iter().map(MaintenanceRecordView::from).collect() };
    // A window on a visible and a hidden service shows only the visible one.
    let mut out = serde_json::to_value(views).map_err(ApiError::internal)?;
    caller.scrub(&mut out);
    Ok(Json(out).into_response())
}

/// One maintenance window with its whole history.
#[utoipa::path(
    get,
    path = "/api/v1/maintenance/{id}",
    tag = "maintenance",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "a maintenance window id")),
    responses((status = 200, body = MaintenanceRecordView), ReadErrors)
)]
async fn one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let caller = auth::require(&state, &headers, Role::Reader)?;
    only(&params, &[])?;
    let lookup = id.clone();
    let found = blocking(move || Ok(maintenance::get(state.store(), &lookup)?)).await?;
    // Outside a scoped token's services a window does not exist for it (SPEC §12).
    let window = found.filter(|w| visible(&caller, w)).ok_or_else(|| ApiError::from(MaintenanceError::NotFound(id)))?;
    let mut out = serde_json::to_value(MaintenanceRecordView::from(&window)).map_err(ApiError::internal)?;
    caller.scrub(&mut out);
    Ok(Json(out).into_response())
}

/// Reads a window for a write: the writer's role first, then the window (404), then the
/// scope over its services (403: SPEC §12 answers a maintenance write outside an
/// operator's services so, where a read outside a scope is a 404).
async fn window_for_write(state: &AppState, headers: &HeaderMap, id: &str) -> Result<(Principal, Window), ApiError> {
    auth::require(state, headers, Role::Operator)?;
    let st = state.clone();
    let lookup = id.to_string();
    let found = blocking(move || Ok(maintenance::get(st.store(), &lookup)?)).await?;
    let window = found.ok_or_else(|| ApiError::from(MaintenanceError::NotFound(id.to_string())))?;
    let caller = require_maintenance_writer(state, headers, &window.services)?;
    Ok((caller, window))
}

/// `{"end": …}`: ends a window early, or extends one that has not ended (409 after).
#[utoipa::path(
    patch,
    path = "/api/v1/maintenance/{id}",
    tag = "maintenance",
    security(("api_token" = [])),
    params(("id" = String, Path, description = "a maintenance window id")),
    request_body(content = EndBody, content_type = "application/json"),
    responses((status = 200, description = "the window with the new end in its history", body = MaintenanceRecordView), WriteErrors)
)]
async fn set_end(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (caller, before) = window_for_write(&state, &headers, &id).await?;
    let body: EndBody = json_body(&body, "{\"end\": \"2026-11-11T02:00:00Z\"}")?;
    let by = by(&caller);
    let now = super::now_ms();
    let st = state.clone();
    let window = blocking(move || {
        let config = st.config();
        Ok(maintenance::set_end(st.store(), &config.catalogue, &id, &body.end, &by, now)?)
    })
    .await?;
    if window.history.len() > before.history.len() {
        tracing::info!(window = %window.id, by = %caller.id.as_deref().unwrap_or("-"), "maintenance window given a new end");
    }
    let mut out = serde_json::to_value(MaintenanceRecordView::from(&window)).map_err(ApiError::internal)?;
    caller.scrub(&mut out);
    Ok(Json(out).into_response())
}

/// Cancels a window: kept, with `cancelled_at` and `cancelled_by`; it excludes nothing.
#[utoipa::path(
    delete,
    path = "/api/v1/maintenance/{id}",
    tag = "maintenance",
    security(("api_token" = [])),
    params(("id" = String, Path, description = "a maintenance window id")),
    responses((status = 200, description = "the cancelled window", body = MaintenanceRecordView), WriteErrors)
)]
async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (caller, _) = window_for_write(&state, &headers, &id).await?;
    let by = by(&caller);
    let now = super::now_ms();
    let st = state.clone();
    let window = blocking(move || {
        let config = st.config();
        Ok(maintenance::cancel(st.store(), &config.catalogue, &id, &by, now)?)
    })
    .await?;
    tracing::info!(window = %window.id, by = %caller.id.as_deref().unwrap_or("-"), "maintenance window cancelled");
    let mut out = serde_json::to_value(MaintenanceRecordView::from(&window)).map_err(ApiError::internal)?;
    caller.scrub(&mut out);
    Ok(Json(out).into_response())
}
