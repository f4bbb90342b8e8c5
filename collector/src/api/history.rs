//! The history endpoints of SPEC §10: catalogue versions (listed, and each one's
//! catalogue without token hashes). Read tokens as for the rest of the read API.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiError;
use super::read::{authorize, blocking, only};
use crate::history::{self, HistoryError};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/catalogue/versions", get(versions))
        .route("/api/v1/catalogue/versions/{n}", get(version))
}

type Params = Query<HashMap<String, String>>;

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        ApiError::internal(e)
    }
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
