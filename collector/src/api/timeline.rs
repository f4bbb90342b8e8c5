//! What the dashboard draws a period from, and what Grafana's JSON datasources can read:
//! `GET /api/v1/services/{id}/timeline` (the state runs of a period with their reasons and
//! the maintenance windows) and `GET /api/v1/services/{id}/latency/series` (latency
//! percentiles per hour or local day). Read tokens as every read endpoint; figures from
//! `report`, JSON from `views`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use super::ApiError;
use super::read::{calendar_param, report_json};
use crate::report;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/services/{id}/timeline", get(timeline))
        .route("/api/v1/services/{id}/latency/series", get(latency_series))
}

type Params = Query<std::collections::HashMap<String, String>>;

async fn timeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    report_json(state, &headers, params, &["period", "from", "to", "calendar"], move |store, c, q, p, now| {
        report::service_state_timeline(store, c, &id, calendar_param(p), q, now)
    })
    .await
}

async fn latency_series(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    report_json(
        state,
        &headers,
        params,
        &["period", "from", "to", "calendar", "step", "percentiles"],
        move |store, c, q, p, now| {
            let percentiles = report::parse_percentiles(p.get("percentiles").map(String::as_str))?;
            let step = report::parse_step(p.get("step").map(String::as_str))?;
            report::latency_series(store, c, &id, calendar_param(p), q, step, &percentiles, now)
        },
    )
    .await
}
