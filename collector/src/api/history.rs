//! The history endpoints of SPEC §10: agreement reports through the history layer (a
//! closed period answers from its sealed revision), each period's revisions, and catalogue
//! versions (listed, and each one's catalogue without token hashes). Read tokens as for the
//! rest of the read API.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiError;
use super::read::{authorize, blocking, only, period_query};
use crate::history::periods::HistoryReadError;
use crate::history::{self, HistoryError};
use crate::period::PeriodQuery;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agreements/{id}/report", get(agreement_report))
        .route("/api/v1/agreements/{id}/periods/{label}/revisions", get(period_revisions))
        .route("/api/v1/agreements/{id}/periods/{label}/restate", axum::routing::post(restate))
        .route("/api/v1/compliance", get(compliance))
        .route("/api/v1/catalogue/versions", get(versions))
        .route("/api/v1/catalogue/versions/{n}", get(version))
}

type Params = Query<HashMap<String, String>>;

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        ApiError::internal(e)
    }
}

impl From<HistoryReadError> for ApiError {
    fn from(e: HistoryReadError) -> Self {
        match e {
            HistoryReadError::Report(r) => ApiError::from(r),
            HistoryReadError::History(h) => ApiError::from(h),
        }
    }
}

async fn agreement_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    only(&params, &["period", "from", "to"])?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let query = period_query(&params, config.api.max_period);
        let store = state.store().as_ref();
        Ok(history::periods::agreement_report(store, store, &config.catalogue, &id, query, now)?)
    })
    .await?;
    Ok(Json(out).into_response())
}

async fn compliance(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    only(&params, &["period", "from", "to"])?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let query = period_query(&params, config.api.max_period);
        let store = state.store().as_ref();
        Ok(history::periods::compliance(store, store, &config.catalogue, query, now)?)
    })
    .await?;
    Ok(Json(out).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RestateBody {
    reason: String,
}

/// Stores the recomputation of a closed period (with its sealed catalogue version) as its
/// next revision. Needs a `manager` token; the reason is required.
async fn restate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, label)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = super::auth::require(&state, &headers, probity_config::Role::Manager)?;
    let body: RestateBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be {{\"reason\": \"why this period is restated\"}}: {e}"))
    })?;
    let reason = body.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ApiError::BadRequest("reason is empty; say why this period is restated".into()));
    }
    let by = caller.id.unwrap_or_else(|| "manager".into());
    let now = super::now_ms();
    let revision = blocking(move || {
        let config = state.config();
        let store = state.store().as_ref();
        let request = history::periods::Restatement { agreement: &id, label: &label, reason: &reason, by: &by };
        history::periods::restate(store, store, &config.catalogue, &request, now).map_err(|e| match e {
            history::periods::RestateError::NotClosed { .. } => ApiError::Conflict(e.to_string()),
            history::periods::RestateError::Unchanged { .. } => ApiError::Conflict(e.to_string()),
            history::periods::RestateError::Read(r) => ApiError::from(r),
        })
    })
    .await?;
    tracing::info!(by = %revision.by, revision = revision.number, "closed period restated");
    let mut out = revision.listing();
    out["report"] = revision.report;
    Ok((axum::http::StatusCode::CREATED, Json(out)).into_response())
}

/// Every revision of a closed period (sealing it first if it has none yet).
async fn period_revisions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, label)): Path<(String, String)>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    only(&params, &[])?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let store = state.store().as_ref();
        // Reading the period's report seals it if it is closed, and checks the id and label.
        let query = PeriodQuery { period: Some(&label), from: None, to: None, max_period: None };
        let report = history::periods::agreement_report(store, store, &config.catalogue, &id, query, now)?;
        let label = report["period"]["label"].as_str().unwrap_or(&label).to_string();
        let list = history::periods::revisions(store, &id, &label)?;
        let lines: Vec<serde_json::Value> = list.iter().map(|r| r.listing()).collect();
        Ok(serde_json::json!({
            "agreement": id,
            "period": report["period"],
            "revisions": lines,
        }))
    })
    .await?;
    Ok(Json(out).into_response())
}

async fn versions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    only(&params, &[])?;
    let list = blocking(move || Ok(history::versions::list(state.store())?)).await?;
    let lines: Vec<serde_json::Value> = list.iter().map(|v| v.summary()).collect();
    Ok(Json(serde_json::json!({ "versions": lines })).into_response())
}

async fn version(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(n): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    only(&params, &[])?;
    let number: u32 = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::BadRequest(format!("\"{n}\" is not a catalogue version; versions are numbered 1, 2, …"))
    })?;
    let found = blocking(move || Ok(history::versions::get(state.store(), number)?)).await?;
    let v = found.ok_or_else(|| ApiError::NotFound(format!("no catalogue version {number}")))?;
    let mut out = v.summary();
    out["catalogue"] = v.catalogue;
    Ok(Json(out).into_response())
}
